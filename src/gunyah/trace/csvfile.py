"""CSV: a header row naming the JSON lines' columns, then one call a row."""

from __future__ import annotations

import csv
from collections.abc import Iterator

from .calls import MAX_SHOWN, TraceError
from .lines import Record

NAME = "csv"
KEYS = {"function_id", "r0", "x0"}


def sniff(body: list[str]) -> bool:
    header = {h.strip().lower() for h in body[0].split(",")}
    return "," in body[0] and bool(header & KEYS)


def records(text: Iterator[str]) -> Iterator[Record]:
    """One record per row; a row that does not fit the header (more or fewer
    fields, a field past csv's limit) is malformed."""
    reader = csv.reader(text)
    try:
        header = next(reader, None)
    except csv.Error as e:
        raise TraceError(f"a CSV trace whose header cannot be read: {e}") from None
    if not header or not KEYS & set(header):
        raise TraceError("a CSV trace needs a header with function_id, r0 or x0")
    while True:
        try:
            row = next(reader, None)
        except csv.Error as e:
            yield reader.line_num, f"({e})", None
            continue
        if row is None:
            return
        rec = dict(zip(header, row, strict=True)) if len(row) == len(header) else None
        yield reader.line_num, ",".join(row)[:MAX_SHOWN], rec
