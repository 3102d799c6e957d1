"""How a boot ends and the exit status every command ends with, declared once:
the boot's result, the commands and their --help text all take them from here.

Why: a script that runs `gunyah boot` or `gunyah run` reads only the exit
status, so a number written twice is a promise kept in one place and broken
in the other. The verdicts' own statuses (0 supported, 1 not Gunyah, 3
unsupported API) belong to the verdicts (gunyah.guest.driver.VERDICT_TABLE).
"""

from __future__ import annotations

import signal

EXIT_OK = 0
EXIT_FAILED_ROWS = 1  # `gunyah conformance`: some row of the matrix fails
EXIT_USAGE = 2  # bad usage: one line on stderr
EXIT_RESET = 4  # the guest asked for a reset (PSCI SYSTEM_RESET, SYSTEM_RESET2): no verdict
EXIT_NO_VERDICT = 5  # the boot ended, but the module under test gave no verdict
# `gunyah boot --vm`: the primary's boot passed (it would have exited 0), but
# the secondary VM did not power off cleanly (our VMM failed or was never run,
# the VM crashed, was reset, stopped with force or never ended), or the test
# it ran said it failed (kvm-unit-tests' EXIT: STATUS on its console: boot.vm)
EXIT_VM_FAILED = 6
EXIT_INTERNAL = 70  # EX_SOFTWARE (sysexits.h): a bug of ours
EXIT_OUTPUT = 74  # EX_IOERR (sysexits.h): the report could not be written
EXIT_GUEST_FAILED = 125  # the guest could not be judged: a panic, a fault, a timeout, QEMU
EXIT_SIGNALLED = 128  # + the signal's number, as a shell reports a command a signal stopped
EXIT_INTERRUPTED = EXIT_SIGNALLED + signal.SIGINT  # Ctrl-C: 130

# How a boot ends (BootResult.stopped_by): the endings a guest chose or came
# to, each judged by its verdict or its own status...
POWEROFF = "poweroff"  # SYSTEM_OFF reached the model
HALTED = "halted"  # nothing left to run, or a power-down nothing could carry out
GUEST_EXIT = "guest-exit"  # the guest's status through QEMU's chr-testdev
RESET = "reset"  # SYSTEM_RESET reached the model: EXIT_RESET
# ...and the ones that leave nothing to judge: EXIT_GUEST_FAILED
PANIC = "panic"  # the kernel panicked
SHIM_FAULT = "shim-fault"  # the shim took an exception it did not expect
HOST_ERROR = "host-error"  # the host side of the channel failed
QEMU_EXIT = "qemu-exit"  # QEMU exited on its own
TIMEOUT = "timeout"
INTERRUPTED = "interrupted"  # Ctrl-C or a signal

JUDGED = (POWEROFF, HALTED, GUEST_EXIT)
FAILED = (PANIC, SHIM_FAULT, HOST_ERROR, QEMU_EXIT, TIMEOUT, INTERRUPTED)
STOPS = (*JUDGED, RESET, *FAILED)

