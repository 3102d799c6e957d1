"""The generated half of the project's ABI reference: docs/hypercalls.md,
every native hypercall as its declaration (abi/hvc/*.hvc) gives it. A test
holds the page to the declarations; regenerate it with
`python -m gunyah.abi.reference > docs/hypercalls.md`."""

from __future__ import annotations

from collections.abc import Sequence

from . import cspace
from .calls import hypercall_id, native_imm
from .hvc import DECLARED, RESERVED, Hypercall, Input, Output


def catalogue() -> str:
    """Every declared call as the Markdown page docs/hypercalls.md."""
    def regs(items: Sequence[Input | Output]) -> str:
        return "<br>".join(
            f"X{i} {a.name}" + ("" if a.name in RESERVED or a.name == a.ctype else f" ({a.ctype})")
            for i, a in enumerate(items)
        )

    def lookups(call: Hypercall) -> str:
        out = []
        for k in call.lookups:
            kind = "any object" + (f", then {k.object_type}" if k.object_type else "")
            what = kind if k.any_object else k.object_type
            rights = ", ".join(cspace.rights_names(k.object_type, k.rights))
            out.append(f"{call.inputs[k.index].name}: {what} [{rights}]")
        return "<br>".join(out)

    lines = [
        "# Gunyah's native hypercalls",
        "",
        "Generated from `src/gunyah/abi/hvc/*.hvc` by `python -m gunyah.abi.reference`;",
        "a test checks this page against the declarations. Each call is",
        "`hvc #imm` with its arguments from X0, or its SMCCC form (the SMCCC ID in",
        "X0, the same arguments from X1). A number below the last one that is",
        "missing, or a call whose feature a build lacks, is a hole in that build's",
        "table: it answers -1 (abi.md section 8).",
        "Capabilities are looked up in the order given, with the rights in brackets.",
        "",
        "| n | native | SMCCC | call | arguments | results | capabilities | only with |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for n, call in DECLARED.items():
        lines.append(
            f"| {n:#04x} | hvc #{native_imm(n):#x} | {hypercall_id(n):#010x} | {call.name} "
            f"| {regs(call.inputs)} | {regs(call.outputs)} | {lookups(call)} "
            f"| {call.feature or ''} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # python -m gunyah.abi.reference > docs/hypercalls.md
    print(catalogue(), end="")
