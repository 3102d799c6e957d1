"""The `gunyah` command: each command group is a module of this package that
maps arguments to a service function, a renderer and an exit status; every
fact comes from the layers below."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from types import FrameType

from ..outcome import EXIT_SIGNALLED
from . import boot, call, conformance, decode, explain, identify, personas, probe, rm, run, trace
from .common import (
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_OUTPUT,
    EXIT_USAGE,
    FORMATS_CHOICES,
    GuardedOutput,
    OutputError,
    Parser,
    Stopped,
    UsageError,
    count,
    error,
    number,
    parse_number,
    seconds,
    silence_stdout,
)

__all__ = ["FORMATS_CHOICES", "build_parser", "count", "main", "number", "parse_number",
           "seconds"]  # fmt: skip
COMMANDS = (identify, run, boot, call, rm, decode, explain, conformance, probe, trace, personas)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="gunyah",
        description="The Gunyah hypervisor's guest-identification ABI, both sides of SMCCC: "
        "a guest driver, an executable hypervisor model, an AArch64 vCPU that traps real "
        "guest code into it, a real arm64 Linux kernel booted on the model in QEMU, "
        "decoders, a conformance matrix, a read-only probe of this machine, and "
        "hypercall-trace statistics.",
        epilog="Numbers are hex (0x..., underscores allowed) or decimal. "
        "Run 'gunyah COMMAND --help' for each command.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    if sys.stdout is None:  # started with standard output closed
        if sys.stderr is not None:
            print("gunyah: standard output is closed: nothing could be reported", file=sys.stderr)
        return EXIT_OUTPUT
    parser = build_parser()
    real_stdout = sys.stdout
    sys.stdout = GuardedOutput(real_stdout)
    handlers = _stop_on_signals()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return EXIT_USAGE
        code: int = args.func(args)
        sys.stdout.flush()
        return code
    except UsageError as e:
        error(str(e))
        return EXIT_USAGE
    except OutputError as e:
        silence_stdout()
        print(f"gunyah: cannot write the output: {e}", file=sys.stderr)
        return EXIT_OUTPUT
    except BrokenPipeError:  # the reader went away (| head): not an error of ours
        silence_stdout()
        return EXIT_OK
    except Stopped as e:
        return EXIT_SIGNALLED + e.signum
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
        for signum, handler in handlers.items():
            signal.signal(signum, handler)


def _stop_on_signals() -> dict[int, signal._HANDLER]:
    """SIGTERM (what timeout(1) and CI cancellation send) and SIGHUP (a closed
    terminal) stop a command as Ctrl-C does; the handlers it replaced."""

    def stop(signum: int, frame: FrameType | None) -> None:
        raise Stopped(signum)

    previous: dict[int, signal._HANDLER] = {}
    try:
        for signum in (signal.SIGTERM, signal.SIGHUP):
            previous[signum] = signal.signal(signum, stop)
    except ValueError:  # not the main thread (an embedding program): leave them be
        pass
    return previous


if __name__ == "__main__":
    sys.exit(main())
