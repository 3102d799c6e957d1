"""The `gunyah` command: argument parsing and rendering only.

Every fact comes from the layers below; this module picks one, renders it as
text or as JSON, and maps outcomes to exit codes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from . import abi, render
from .conduit import Conduit, Kind
from .guest import VERDICT_EXIT, identify
from .hypervisor import Hypervisor, call_once
from .limits import (
    DEFAULT_MAX_INSTRUCTIONS,
    DEFAULT_TIMEOUT,
    MAX_INSTRUCTIONS,
    MAX_STACK,
    MAX_TIMEOUT,
)
from .personas import DEFAULT_PERSONA, PERSONAS, PERSONAS_BY_NAME
from .trap import describe_hvc_imm

EXIT_GUEST_FAILED = 125
EXIT_INTERNAL = 70  # EX_SOFTWARE
EXIT_OUTPUT = 74  # EX_IOERR: the report could not be written
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports Ctrl-C
FORMATS_CHOICES = ("auto", "ftrace", "jsonl", "csv", "run")  # gunyah.trace.FORMATS

EXIT_OK = 0
EXIT_USAGE = 2


class UsageError(Exception):
    """Bad input from the user: one line on stderr, exit 2."""


class OutputError(Exception):
    """Standard output cannot be written (a full disk, a closed or broken file)."""


class _GuardedOutput:
    """Standard output whose write errors say they are output errors, so they
    are told apart from reading errors and bugs."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            n: int = self._stream.write(text)
            return n
        except BrokenPipeError:
            raise
        except OSError as e:
            raise OutputError(e.strerror or str(e)) from None

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            raise
        except OSError as e:
            raise OutputError(e.strerror or str(e)) from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _silence_stdout() -> None:
    """Points fd 1 at /dev/null, so that the interpreter's last flush of what
    could not be written fails quietly instead of printing a traceback."""
    if sys.__stdout__ is None:
        return
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.__stdout__.fileno())
        os.close(devnull)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


_NUMBER = re.compile(r"0[xX][0-9a-fA-F](?:_?[0-9a-fA-F])*|[0-9](?:_?[0-9])*")


def parse_number(text: str) -> int | None:
    """Hex (0x...) or decimal, underscores between digits allowed; ASCII digits
    only, no sign, no spaces. None where `text` is not such a number."""
    if not _NUMBER.fullmatch(text):
        return None
    return int(text, 0) if text[:2].lower() == "0x" else int(text.replace("_", ""), 10)


def number(bits: int) -> Callable[[str], int]:
    """argparse type: hex (0x..., underscores allowed) or decimal, in 0..2**bits-1."""

    def parse(text: str) -> int:
        value = parse_number(text) if len(text) <= 80 else None
        if value is None:
            raise argparse.ArgumentTypeError(
                f"{text[:40]!r} is not a number (use hex like 0xc6008000 or decimal)"
            )
        if value >> bits:
            raise argparse.ArgumentTypeError(f"{text} does not fit in {bits} bits")
        return value

    parse.__name__ = f"{bits}-bit number"
    return parse


def count(most: int) -> Callable[[str], int]:
    """argparse type: a whole number from 1 to `most`."""

    def parse(text: str) -> int:
        value = parse_number(text) if len(text) <= 80 else None
        if value is None:
            raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a whole number")
        if not 1 <= value <= most:
            raise argparse.ArgumentTypeError(f"{text} must be from 1 to {most}")
        return value

    parse.__name__ = "whole number"
    return parse


def seconds(text: str) -> float:
    """argparse type: a positive number of seconds the engine can count in microseconds."""
    try:
        value = float(text) if len(text) <= 80 and text.isascii() else float("nan")
    except ValueError:
        value = float("nan")
    if value != value:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a number of seconds")
    if not 0 < value <= MAX_TIMEOUT:
        raise argparse.ArgumentTypeError(f"{text} must be more than 0 and at most {MAX_TIMEOUT} s")
    return value


def _emit(args: argparse.Namespace, data: Any, text: str) -> None:
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print(text)


def _add_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def _add_persona(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--persona",
        default=DEFAULT_PERSONA,
        choices=list(PERSONAS_BY_NAME),
        metavar="NAME",
        help=f"hypervisor the model plays (default {DEFAULT_PERSONA}; see 'gunyah personas')",
    )


def _add_limits(p: argparse.ArgumentParser, each: str = "") -> None:
    """The vCPU's instruction budget and wall-clock limit (VCpu's defaults)."""
    p.add_argument("--max-instructions", type=count(MAX_INSTRUCTIONS),
                   default=DEFAULT_MAX_INSTRUCTIONS,
                   metavar="N", help=f"instruction budget{each} (default "
                   f"{DEFAULT_MAX_INSTRUCTIONS})")  # fmt: skip
    p.add_argument("--timeout", type=seconds, default=DEFAULT_TIMEOUT, metavar="S",
                   help=f"wall-clock limit{each} in seconds "
                   f"(default {DEFAULT_TIMEOUT:g})")  # fmt: skip


def _add_format(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=FORMATS_CHOICES, default="auto",
                   help="input format (default: detected from the first lines)")  # fmt: skip


# -- identify -----------------------------------------------------------------
def cmd_identify(args: argparse.Namespace) -> int:
    kind: Kind = "smc" if args.smc else "hvc"
    hyp = Hypervisor(args.persona)
    if args.vcpu:
        from .builtin_guest import GuestFailure, run_builtin

        try:
            result, _run = run_builtin(hyp, kind)
        except GuestFailure as e:
            print(f"gunyah: {e}", file=sys.stderr)
            return EXIT_GUEST_FAILED
    else:
        result = identify(Conduit(hyp, kind))
    data = {
        "persona": args.persona,
        "conduit": kind,
        "driver": "vcpu" if args.vcpu else "python",
        **result.to_dict(),
    }
    _emit(args, data, render.identification(data))
    return VERDICT_EXIT[result.verdict]


# -- call ---------------------------------------------------------------------
def cmd_call(args: argparse.Namespace) -> int:
    kind: Kind = "smc" if args.smc else "hvc"
    try:
        result = call_once(Hypervisor(args.persona), kind, args.hvc_imm or 0, args.values)
    except ValueError as e:
        raise UsageError(str(e)) from None
    data = result.to_dict()
    _emit(args, data, render.call_result(data))
    return EXIT_OK


# -- run ----------------------------------------------------------------------
def cmd_run(args: argparse.Namespace) -> int:
    from .vcpu import GuestError, VCpu, load_elf, load_raw

    try:
        image = load_raw(args.guest, args.raw) if args.raw is not None else load_elf(args.guest)
        cpu = VCpu(
            Hypervisor(args.persona),
            max_instructions=args.max_instructions,
            timeout=args.timeout,
            stack_size=args.stack_size,
            trace=args.trace or args.json,
        )
    except (GuestError, ValueError) as e:
        raise UsageError(str(e)) from None
    try:
        result = cpu.run(image)
    except GuestError as e:
        raise UsageError(str(e)) from None
    data = result.to_dict()
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        sys.stdout.write(result.output)
        if result.output and not result.output.endswith("\n"):
            sys.stdout.write("\n")
        if result.calls_dropped:
            print(f"({result.calls_dropped} earlier calls not kept; the last "
                  f"{len(result.calls)} follow)")  # fmt: skip
        for call in data["calls"]:
            print(render.trap_record(call))
    if result.output_dropped and not args.json:
        print(f"gunyah: {result.output_dropped} more bytes of console output not kept",
              file=sys.stderr)  # fmt: skip
    if result.fault is not None:
        if not args.json:
            recent = [c.to_dict() for c in result.recent]
            print(render.fault(result.fault.to_dict(), recent), file=sys.stderr)
        return EXIT_GUEST_FAILED
    status = result.exit_status
    if status is not None and 0 <= status <= 255:
        return status
    print(f"gunyah: the guest's exit status {status:#x} is not a process exit status (0..255)",
          file=sys.stderr)  # fmt: skip
    return EXIT_GUEST_FAILED


# -- conformance ----------------------------------------------------------------
def cmd_conformance(args: argparse.Namespace) -> int:
    from . import conformance
    from .vcpu import GuestError, load_elf

    kind: Kind = "smc" if args.smc else "hvc"
    names = args.persona or [p.name for p in PERSONAS]
    personas = [PERSONAS_BY_NAME[n] for n in dict.fromkeys(names)]
    if args.guest is None:
        rows = conformance.check_python(personas, kind) + conformance.check_builtin(personas, kind)
    else:
        try:
            image = load_elf(args.guest)
            rows = conformance.check_image(
                image, personas, Path(args.guest).name,
                max_instructions=args.max_instructions, timeout=args.timeout,
            )  # fmt: skip
        except GuestError as e:
            raise UsageError(str(e)) from None
    m = conformance.Matrix(tuple(rows))
    data = m.to_dict()
    _emit(args, data, render.matrix(data))
    return EXIT_OK if m.passed else 1


# -- probe --------------------------------------------------------------------
def cmd_probe(args: argparse.Namespace) -> int:
    from . import probe

    if args.capture is not None and not args.capture:
        raise UsageError("--capture needs a file name, not ''")
    if args.capture and os.path.lexists(args.capture):
        raise UsageError(f"{args.capture}: already exists; the capture never replaces a file")
    try:
        report = probe.probe(args.root)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if args.capture:
        try:
            probe.write_capture(report, args.capture)
        except FileExistsError:
            raise UsageError(
                f"{args.capture}: already exists; the capture never replaces a file"
            ) from None
        except OSError as e:
            raise UsageError(
                f"{args.capture}: cannot write the capture: {e.strerror or e}"
            ) from None
    data = report.to_dict()
    _emit(args, data, render.probe_report(data))
    if args.capture and not args.json:
        print(f"Evidence written to {args.capture}; read it back with --root {args.capture}")
    return EXIT_OK if report.verdict in probe.GUNYAH_VERDICTS else 1


# -- trace --------------------------------------------------------------------
def _progress(paths: list[str], quiet: bool) -> Any:
    """A progress bar on a terminal for big inputs; nothing in --json or a pipe.
    It counts the bytes of text taken, so a gzip file's size is no total for it."""
    files = [p for p in paths if p != "-" and os.path.isfile(p)]
    size = sum(os.path.getsize(p) for p in files)
    if quiet or size < 64 << 20 or not (sys.stderr.isatty() and sys.stdout.isatty()):
        return None
    from tqdm import tqdm

    from .trace import GZIP_MAGIC

    def gzipped(path: str) -> bool:
        try:
            with open(path, "rb") as f:
                return f.read(len(GZIP_MAGIC)) == GZIP_MAGIC
        except OSError:
            return False

    total = None if any(gzipped(p) for p in files) or len(files) < len(paths) else size
    return tqdm(total=total, unit="B", unit_scale=True, desc="reading", leave=False)


def cmd_trace_stats(args: argparse.Namespace) -> int:
    from . import trace

    bar = _progress(args.files, args.json)
    try:
        s = trace.stats(args.files, args.format, bar.update if bar else None)
    finally:
        if bar:
            bar.close()
    read_any = len(s.errors) < len(args.files)
    if read_any:
        data = s.to_dict()
        _emit(args, data, render.trace_stats(data))
    for e in s.errors:
        print(f"gunyah: {e}" + (" (left out of the counts)" if read_any else ""), file=sys.stderr)
    return EXIT_USAGE if s.errors else EXIT_OK


def cmd_trace_decode(args: argparse.Namespace) -> int:
    from . import trace

    bad = trace.Malformed()
    names: dict[tuple[str, int, int | None], str] = {}
    try:
        for calls, _lines in trace.iter_calls(args.file, args.format, bad):
            for line, smc, pc, r0, imm in zip(
                calls.line.tolist(), calls.smc.tolist(), calls.pc.tolist(),
                calls.r0.tolist(), calls.imm.tolist(), strict=True,
            ):  # fmt: skip
                key = trace.call_key(smc, r0, imm)
                if key not in names:
                    if len(names) >= trace.MAX_DISTINCT:  # bounded whatever the trace
                        names.clear()
                    names[key] = trace.call_name(*key)
                d = {"file": args.file, "line": line, "conduit": key[0], "imm": imm, "pc": pc,
                     "r0": r0, "function_id": key[2], "name": names[key]}  # fmt: skip
                print(json.dumps(d) if args.json else render.trace_call(d))
    except trace.TraceError as e:
        raise UsageError(str(e)) from None
    for source, line, text in bad.first:
        print(f"gunyah: {render.printable(source)}:{line}: malformed: {render.printable(text)}",
              file=sys.stderr)  # fmt: skip
    if bad.count > len(bad.first):
        print(f"gunyah: {bad.count - len(bad.first)} more malformed lines", file=sys.stderr)
    return EXIT_OK


# -- decode -------------------------------------------------------------------
def cmd_decode(args: argparse.Namespace) -> int:
    values: list[int] = args.values
    if args.uid:
        if len(values) != 4:
            raise UsageError(f"--uid takes exactly 4 words W0 W1 W2 W3, got {len(values)}")
        if any(v >> 32 for v in values):
            raise UsageError("--uid words are 32-bit; a value does not fit")
        uid = abi.CallUid.decode(*values)
        d = uid.to_dict()
        d["is_gunyah"] = uid.is_gunyah
        _emit(args, d, render.uid(d))
        return EXIT_OK
    if args.identify:
        if not 1 <= len(values) <= 4:
            raise UsageError(f"--identify takes X0 [X1 X2 X3], got {len(values)} values")
        d = abi.HypIdentify.decode(*values).to_dict()
        _emit(args, d, render.identify_result(d))
        return EXIT_OK
    if not values:
        raise UsageError("give at least one VALUE to decode")
    if args.hvc_imm:
        if any(v >> 16 for v in values):
            raise UsageError("an HVC immediate is 16 bits; a value does not fit")
        rows = [describe_hvc_imm(v) for v in values]
        _emit(args, rows, "\n".join(render.hvc_imm(r) for r in rows))
        return EXIT_OK
    if any(v >> 32 for v in values):
        bad = next(v for v in values if v >> 32)
        raise UsageError(f"function ID {bad:#x} does not fit in 32 bits")
    rows = [abi.describe_function_id(v) for v in values]
    _emit(args, rows, "\n".join(render.function_id(r) for r in rows))
    return EXIT_OK


# -- personas -----------------------------------------------------------------
def cmd_personas(args: argparse.Namespace) -> int:
    rows = [p.to_dict() for p in PERSONAS]
    _emit(args, rows, render.personas(rows))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="gunyah",
        description="The Gunyah hypervisor's guest-identification ABI, both sides of SMCCC: "
        "a guest driver, an executable hypervisor model, an AArch64 vCPU that traps real "
        "guest code into it, decoders, a conformance matrix, a read-only probe of this "
        "machine, and hypercall-trace statistics.",
        epilog="Numbers are hex (0x..., underscores allowed) or decimal. "
        "Run 'gunyah COMMAND --help' for each command.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser(
        "identify",
        help="run the guest's identification against the hypervisor model",
        description="Run the Linux guest's identification procedure (CALL_UID, then "
        "hypervisor_identify) against the hypervisor model and report what it decides. "
        "Exit status: 0 supported, 1 not Gunyah, 3 Gunyah with an API this guest "
        "must refuse, 2 bad usage.",
    )
    _add_persona(p)
    p.add_argument("--smc", action="store_true", help="use SMC #0 as the conduit (default HVC #0)")
    p.add_argument(
        "--vcpu",
        action="store_true",
        help="run the procedure as AArch64 machine code (the built-in guest) on the vCPU",
    )
    _add_json(p)
    p.set_defaults(func=cmd_identify)

    p = sub.add_parser(
        "run",
        help="run an AArch64 guest program with its HVC/SMC trapped into the model",
        description="Run a static AArch64 ELF (or, with --raw ADDR, a raw binary) on an "
        "emulated CPU at EL1. Every HVC/SMC it executes goes to the hypervisor model; "
        "BRK #0 ends the run with exit status X0, and Arm semihosting serves console "
        "output and exit. Exit status: the guest's own when it stopped itself (125 when "
        "that is outside 0..255), 125 when it faulted or ran out of budget or time, 2 for "
        "bad usage.",
    )
    p.add_argument("guest", metavar="GUEST", help="the guest program")
    _add_persona(p)
    p.add_argument("--trace", action="store_true", help="print every trapped call")
    _add_limits(p)
    p.add_argument(
        "--stack-size",
        type=count(MAX_STACK),
        default=1 << 20,
        metavar="BYTES",
        help=f"stack size (default 1 MiB; a multiple of 16, at most {MAX_STACK >> 20} MiB)",
    )
    p.add_argument(
        "--raw",
        type=number(48),
        metavar="ADDR",
        help="GUEST is a raw binary: load it at ADDR and start there",
    )
    _add_json(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "call",
        help="make one call into the hypervisor model and explain the result",
        description="Make one HVC or SMC into the hypervisor model. With immediate 0 "
        "(the default) the first value is the SMCCC function ID (X0) and the rest are "
        "X1, X2, ...; with --hvc-imm N (Gunyah's native ABI is 0x6000..0x61ff) the values "
        "are X0, X1, ... as given. Prints X0..X3 at the call's width and what they mean.",
    )
    p.add_argument(
        "values",
        nargs="*",
        type=number(64),
        metavar="VALUE",
        help="FUNCTION_ID then arguments, or registers from X0 with --hvc-imm",
    )
    _add_persona(p)
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "--hvc-imm", type=number(16), metavar="N", help="HVC immediate (default 0, SMCCC)"
    )
    g.add_argument("--smc", action="store_true", help="trap with SMC #0 instead of HVC #0")
    _add_json(p)
    p.set_defaults(func=cmd_call)

    p = sub.add_parser(
        "decode",
        help="decode function IDs, HVC immediates, call UIDs or identify results",
        description="Decode SMCCC function IDs (the default), HVC immediates (--hvc-imm), "
        "a call UID's four words (--uid W0 W1 W2 W3), or a hypervisor_identify result "
        "(--identify X0 [X1 X2 X3]).",
    )
    p.add_argument("values", nargs="*", type=number(64), metavar="VALUE")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--hvc-imm", action="store_true", help="values are HVC immediates")
    g.add_argument("--uid", action="store_true", help="values are the UID words W0..W3")
    g.add_argument("--identify", action="store_true", help="values are X0 [X1 X2 X3]")
    _add_json(p)
    p.set_defaults(func=cmd_decode)

    p = sub.add_parser(
        "conformance",
        help="try a guest's identification against every persona",
        description="Run a guest's identification against every persona (or those named "
        "with --persona) and print a matrix: expected verdict, observed verdict, pass or "
        "fail, and the trapped calls behind each failure. GUEST is a static AArch64 ELF "
        "that reports its verdict by exit status (0 supported, 1 not-gunyah, 3 "
        "unsupported-api); without it the built-in Python driver and the built-in AArch64 "
        "guest are checked. Exit status: 0 every row passes, 1 some row fails, 2 bad usage.",
    )
    p.add_argument("guest", nargs="?", metavar="GUEST", help="the guest program to check")
    p.add_argument(
        "--persona",
        action="append",
        choices=list(PERSONAS_BY_NAME),
        metavar="NAME",
        help="check only this persona (repeatable)",
    )
    p.add_argument(
        "--smc", action="store_true", help="the built-in guests use SMC #0 instead of HVC #0"
    )
    _add_limits(p, " per persona")
    _add_json(p)
    p.set_defaults(func=cmd_conformance)

    p = sub.add_parser(
        "probe",
        help="look at this machine (read-only): under Gunyah, hosting it, or neither?",
        description="Gather, without changing anything, what this Linux or Android system "
        "shows about its hypervisor: the device tree's /hypervisor node and its children, "
        "/sys/hypervisor, /dev/gunyah, Gunyah modules and drivers, the Gunyah driver's "
        "kernel log lines, the CPU implementer, DMI, the kernel version. Verdict: "
        "gunyah-host, gunyah-guest, other-hypervisor or no-evidence. Exit status: 0 for a "
        "Gunyah verdict, 1 otherwise, 2 bad usage.",
    )
    p.add_argument(
        "--root",
        default="/",
        metavar="DIR",
        help="read the system tree rooted at DIR, or a capture file, instead of /",
    )
    p.add_argument(
        "--capture",
        metavar="FILE",
        help="also write what was read to FILE (a tar; .gz compresses) for a bug "
        "report; --root FILE reads it back",
    )
    _add_json(p)
    p.set_defaults(func=cmd_probe)

    p = sub.add_parser(
        "trace",
        help="summarise or decode hypercall traces (ftrace, JSON lines, CSV, gunyah run)",
        description="Read hypercall traces: arm64 KVM's kvm_hvc_arm64/kvm_smc_arm64 "
        "tracepoint output, JSON lines or CSV with function_id (or r0/x0), imm, conduit "
        "and pc, or what 'gunyah run --trace' prints. Files may be gzip-compressed; - is "
        "standard input.",
    )
    tsub = p.add_subparsers(dest="trace_command", metavar="COMMAND", parser_class=_Parser,
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
    _add_format(t)
    _add_json(t)
    t.set_defaults(func=cmd_trace_stats)
    t = tsub.add_parser(
        "decode",
        help="print every call with its name, streaming",
        description="Print each call of a trace on its own line with its decoded name, as "
        "it is read; --json prints one JSON object per line. Malformed lines go to stderr.",
    )
    t.add_argument("file", metavar="FILE",
                   help="trace file (- for stdin; gzip is read decompressed)")  # fmt: skip
    _add_format(t)
    _add_json(t)
    t.set_defaults(func=cmd_trace_decode)

    p = sub.add_parser(
        "personas",
        help="list the hypervisors the model can play",
        description="List the model's personas with the verdict a correct guest reaches.",
    )
    _add_json(p)
    p.set_defaults(func=cmd_personas)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    if sys.stdout is None:  # started with standard output closed
        if sys.stderr is not None:
            print("gunyah: standard output is closed: nothing could be reported", file=sys.stderr)
        return EXIT_OUTPUT
    parser = build_parser()
    real_stdout = sys.stdout
    sys.stdout = _GuardedOutput(real_stdout)
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return EXIT_USAGE
        code: int = args.func(args)
        sys.stdout.flush()
        return code
    except UsageError as e:
        print(f"gunyah: {e}", file=sys.stderr)
        return EXIT_USAGE
    except OutputError as e:
        _silence_stdout()
        print(f"gunyah: cannot write the output: {e}", file=sys.stderr)
        return EXIT_OUTPUT
    except BrokenPipeError:  # the reader went away (| head): not an error of ours
        _silence_stdout()
        return EXIT_OK
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as e:  # a bug of ours: one line, and how to see the rest
        if os.environ.get("GUNYAH_DEBUG"):
            raise
        print(
            f"gunyah: internal error: {type(e).__name__}: {e} "
            "(set GUNYAH_DEBUG=1 for the traceback, and please report it)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL
    finally:
        sys.stdout = real_stdout


if __name__ == "__main__":
    sys.exit(main())
