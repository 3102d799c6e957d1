"""Exit statuses and stop reasons, declared once (gunyah.outcome): the numbers
are the conventions they name, and every command's --help says them from there."""

from __future__ import annotations

import os
import signal

import pytest
from cli_helpers import gunyah

from gunyah import conduit, outcome
from gunyah.cli import common


def test_exit_statuses_are_the_conventions_they_name() -> None:
    assert outcome.EXIT_INTERNAL == os.EX_SOFTWARE == 70  # sysexits.h
    assert outcome.EXIT_OUTPUT == os.EX_IOERR == 74
    assert outcome.EXIT_INTERRUPTED == 128 + signal.SIGINT == 130  # as a shell reports Ctrl-C
    assert outcome.EXIT_GUEST_FAILED == 125  # README: a guest that faulted, hung or panicked
    assert (outcome.EXIT_OK, outcome.EXIT_USAGE) == (0, 2)
    # the statuses the commands and the model use are these, not copies
    assert conduit.RESET_STATUS is outcome.EXIT_RESET
    for name in ("EXIT_GUEST_FAILED", "EXIT_INTERNAL", "EXIT_OUTPUT", "EXIT_INTERRUPTED",
                 "EXIT_OK", "EXIT_USAGE"):  # fmt: skip
        assert getattr(common, name) is getattr(outcome, name)


def test_stop_reasons_are_each_judged_reset_or_failed_once() -> None:
    # the names a report's stopped_by carries, which scripts read
    assert outcome.STOPS == ("poweroff", "halted", "guest-exit", "reset", "panic", "shim-fault",
                             "host-error", "qemu-exit", "timeout", "interrupted")  # fmt: skip
    assert set(outcome.JUDGED) | {outcome.RESET} | set(outcome.FAILED) == set(outcome.STOPS)


@pytest.mark.parametrize(
    ("command", "says"),
    [
        ("boot", [f"{outcome.EXIT_GUEST_FAILED} for a panic", f"{outcome.EXIT_RESET} when the "
                  "guest asked for a reset", f"{outcome.EXIT_NO_VERDICT} when the module gave "
                  "no verdict", "0 supported, 1 not-gunyah, 3 unsupported-api",
                  f"{outcome.EXIT_INTERRUPTED}, 143 or 129"]),
        ("run", [f"{outcome.EXIT_GUEST_FAILED} when it faulted", f"{outcome.EXIT_USAGE} for bad"]),
        ("conformance", [f"{outcome.EXIT_FAILED_ROWS} some row fails",
                         f"{outcome.EXIT_GUEST_FAILED} the kernel cannot boot here"]),
    ],
)  # fmt: skip
def test_help_states_the_exit_statuses_outcome_declares(command: str, says: list[str]) -> None:
    p = gunyah(command, "--help")
    assert p.returncode == 0
    text = " ".join(p.stdout.split())
    for phrase in says:
        assert phrase in text, phrase
