"""What every command shares: exit statuses, number parsing, common options,
and printing a result as text or JSON."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from ..limits import DEFAULT_MAX_INSTRUCTIONS, DEFAULT_TIMEOUT, MAX_INSTRUCTIONS, MAX_TIMEOUT
from ..model import DEFAULT_PERSONA, PERSONAS_BY_NAME
from ..outcome import (  # every command's exit statuses, from one place
    EXIT_GUEST_FAILED as EXIT_GUEST_FAILED,
)
from ..outcome import (
    EXIT_INTERNAL as EXIT_INTERNAL,
)
from ..outcome import (
    EXIT_INTERRUPTED as EXIT_INTERRUPTED,
)
from ..outcome import (
    EXIT_OK as EXIT_OK,
)
from ..outcome import (
    EXIT_OUTPUT as EXIT_OUTPUT,
)
from ..outcome import (
    EXIT_USAGE as EXIT_USAGE,
)

FORMATS_CHOICES = ("auto", "ftrace", "jsonl", "csv", "run")  # gunyah.trace.FORMATS


class UsageError(Exception):
    """Bad input from the user: one line on stderr, exit 2."""


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP: stopped as Ctrl-C stops a command (everything it
    started is reaped), with exit status 128 + the signal's number."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def check_output_path(path: os.PathLike[str] | str) -> None:
    """UsageError unless a new file can be made at `path`: asked before the
    work, not after it."""
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise UsageError(f"{path}: the directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"{path}: the directory {parent} is not writable")


def error(message: str) -> None:
    """`gunyah: message` on stderr, every line of it escaped: it may carry a
    compiler's or a guest's text, and no escape sequence reaches the terminal."""
    from ..render import printable

    print("\n".join(f"gunyah: {printable(ln)}" if i == 0 else printable(ln)
                    for i, ln in enumerate(message.splitlines() or [""])),
          file=sys.stderr)  # fmt: skip


class OutputError(Exception):
    """Standard output cannot be written (a full disk, a closed or broken file)."""


class GuardedOutput:
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


def silence_stdout() -> None:
    """Points fd 1 at /dev/null, so that the interpreter's last flush of what
    could not be written fails quietly instead of printing a traceback."""
    if sys.__stdout__ is None:
        return
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.__stdout__.fileno())
        os.close(devnull)


class Parser(argparse.ArgumentParser):
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


def emit(args: argparse.Namespace, data: Any, text: str) -> None:
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print(text)


def add_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def add_persona(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--persona",
        default=DEFAULT_PERSONA,
        choices=list(PERSONAS_BY_NAME),
        metavar="NAME",
        help=f"hypervisor the model plays (default {DEFAULT_PERSONA}; see 'gunyah personas')",
    )


def add_limits(p: argparse.ArgumentParser, each: str = "") -> None:
    """The vCPU's instruction budget and wall-clock limit (VCpu's defaults)."""
    p.add_argument("--max-instructions", type=count(MAX_INSTRUCTIONS),
                   default=DEFAULT_MAX_INSTRUCTIONS,
                   metavar="N", help=f"instruction budget{each} (default "
                   f"{DEFAULT_MAX_INSTRUCTIONS})")  # fmt: skip
    p.add_argument("--timeout", type=seconds, default=DEFAULT_TIMEOUT, metavar="S",
                   help=f"wall-clock limit{each} in seconds "
                   f"(default {DEFAULT_TIMEOUT:g})")  # fmt: skip


def add_format(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=FORMATS_CHOICES, default="auto",
                   help="input format (default: detected from the first lines)")  # fmt: skip
