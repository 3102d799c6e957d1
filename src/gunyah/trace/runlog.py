"""What `gunyah run --trace` prints: one trapped call a line; the guest's own
output lines between them are neither calls nor errors. `gunyah boot --trace` prints the
same form with the calling VM's ID first (vm0x3: docs/boot.md)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from .lines import Record

NAME = "run"
_RUN_LINE = re.compile(
    r"^(?:vm0x[0-9a-fA-F]{1,4} )?(?:cpu(\d{1,5}) )?(0x[0-9a-fA-F]+|\(python\)) (hvc|smc) "
    r"#(0x[0-9a-fA-F]+) x0=(0x[0-9a-fA-F]+)\b"
)


def sniff(body: list[str]) -> bool:
    return any(_RUN_LINE.match(ln) for ln in body)


def records(text: Iterator[str]) -> Iterator[Record]:
    for n, line in enumerate(text, start=1):
        s = line.strip()
        m = _RUN_LINE.match(s)
        if m is not None:
            pc = 0 if m.group(2) == "(python)" else int(m.group(2), 16)
            yield n, s, {"cpu": m.group(1), "pc": pc, "conduit": m.group(3), "imm": m.group(4),
                         "function_id": m.group(5)}  # fmt: skip
