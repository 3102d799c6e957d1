"""`gunyah trace stats|decode`: hypercall traces."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from .. import render
from .common import (
    EXIT_OK,
    EXIT_USAGE,
    Parser,
    UsageError,
    add_format,
    add_json,
    emit,
)


def _progress(paths: list[str], quiet: bool) -> Any:
    """A progress bar on a terminal for big inputs; nothing in --json or a pipe.
    It counts the bytes of text taken, so a gzip file's size is no total for it."""
    files = [p for p in paths if p != "-" and os.path.isfile(p)]
    size = sum(os.path.getsize(p) for p in files)
    if quiet or size < 64 << 20 or not (sys.stderr.isatty() and sys.stdout.isatty()):
        return None
    from tqdm import tqdm

    from ..trace import GZIP_MAGIC

    def gzipped(path: str) -> bool:
        try:
            with open(path, "rb") as f:
                return f.read(len(GZIP_MAGIC)) == GZIP_MAGIC
        except OSError:
            return False

    total = None if any(gzipped(p) for p in files) or len(files) < len(paths) else size
    return tqdm(total=total, unit="B", unit_scale=True, desc="reading", leave=False)


def cmd_trace_stats(args: argparse.Namespace) -> int:
    from .. import trace

    bar = _progress(args.files, args.json)
    try:
        s = trace.stats(args.files, args.format, bar.update if bar else None)
    finally:
        if bar:
            bar.close()
    read_any = len(s.errors) < len(args.files)
    if read_any:
        data = s.to_dict()
        emit(args, data, render.trace_stats(data))
    for e in s.errors:
        print(f"gunyah: {e}" + (" (left out of the counts)" if read_any else ""), file=sys.stderr)
    return EXIT_USAGE if s.errors else EXIT_OK


def cmd_trace_decode(args: argparse.Namespace) -> int:
    from .. import trace

    bad = trace.Malformed()
    names: dict[tuple[str, int, int | None], str] = {}
    try:
        for calls, _lines in trace.iter_calls(args.file, args.format, bad):
            cpus = calls.cpu.tolist() if calls.cpu is not None else [trace.NO_CPU] * len(calls)
            for line, smc, pc, r0, imm, cpu in zip(
                calls.line.tolist(), calls.smc.tolist(), calls.pc.tolist(),
                calls.r0.tolist(), calls.imm.tolist(), cpus, strict=True,
            ):  # fmt: skip
                key = trace.call_key(smc, r0, imm)
                if key not in names:
                    if len(names) >= trace.MAX_DISTINCT:  # bounded whatever the trace
                        names.clear()
                    names[key] = trace.call_name(*key)
                d = {"file": args.file, "line": line, "cpu": None if cpu == trace.NO_CPU else cpu,
                     "conduit": key[0], "imm": imm, "pc": pc, "r0": r0,
                     "function_id": key[2], "name": names[key]}  # fmt: skip
                print(json.dumps(d) if args.json else render.trace_call(d))
    except trace.TraceError as e:
        raise UsageError(str(e)) from None
    for source, line, text in bad.first:
        print(f"gunyah: {render.printable(source)}:{line}: malformed: {render.printable(text)}",
              file=sys.stderr)  # fmt: skip
    if bad.count > len(bad.first):
        print(f"gunyah: {bad.count - len(bad.first)} more malformed lines", file=sys.stderr)
    return EXIT_OK


def register(sub: Any) -> None:
    p = sub.add_parser(
        "trace",
        help="summarise or decode hypercall traces (ftrace, JSON lines, CSV, gunyah run)",
        description="Read hypercall traces: arm64 KVM's kvm_hvc_arm64/kvm_smc_arm64 "
        "tracepoint output, JSON lines or CSV with function_id (or r0/x0), imm, conduit "
        "and pc, or what 'gunyah run --trace' prints. Files may be gzip-compressed; - is "
        "standard input.",
    )
    tsub = p.add_subparsers(dest="trace_command", metavar="COMMAND", parser_class=Parser,
                            required=True)  # fmt: skip
    t = tsub.add_parser(
        "stats",
        help="count calls by name",
        description="Count every call in the traces by conduit, immediate and function ID, "
        "named by the same decoder as 'gunyah decode'; malformed lines are counted and the "
        "first few shown with their line numbers, and never stop the run.",
    )
    t.add_argument("files", nargs="+", metavar="FILE",
                   help="trace files (- for stdin; gzip is read decompressed)")  # fmt: skip
    add_format(t)
    add_json(t)
    t.set_defaults(func=cmd_trace_stats)
    t = tsub.add_parser(
        "decode",
        help="print every call with its name, streaming",
        description="Print each call of a trace on its own line with its decoded name, as "
        "it is read; --json prints one JSON object per line. Malformed lines go to stderr.",
    )
    t.add_argument("file", metavar="FILE",
                   help="trace file (- for stdin; gzip is read decompressed)")  # fmt: skip
    add_format(t)
    add_json(t)
    t.set_defaults(func=cmd_trace_decode)
