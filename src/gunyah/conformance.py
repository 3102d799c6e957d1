"""A conformance matrix: a guest's identification against every persona.

Each persona names the verdict a correct guest reaches against it (docs/abi.md
section 5), and a reference driver (`guest.references`, the Linux driver's
final form by default) says which call UIDs a correct guest takes for
Gunyah: each row is judged by one, and says which. A guest is the Python
driver, the built-in AArch64 guest, or any static AArch64 ELF that reports
its verdict by exit status: 0 supported, 1 not-gunyah, 3 unsupported-api.
A row passes when the observed verdict is the expected one; a failing row
keeps the trapped calls behind it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .conduit import Conduit, Kind, RecordingHandler, TrapRecord
from .guest import EXIT_VERDICTS, identify
from .guest.references import DEFAULT_REFERENCE, Reference
from .limits import DEFAULT_MAX_INSTRUCTIONS, DEFAULT_TIMEOUT
from .model import Hypervisor, Persona
from .toolchain import BUILTIN_ELF
from .vcpu import Image, VCpu, load_elf

MAX_CALLS = 256  # calls a row keeps (the last ones): enough to see why it failed
DRIVER_PYTHON = "python"
DRIVER_BUILTIN = "builtin-aarch64"


@dataclass(frozen=True)
class Row:
    guest: str
    persona: Persona
    observed: str  # a verdict, or what happened instead ("exit 7", "fault: ...")
    calls: tuple[TrapRecord, ...]
    reason: str | None = None  # why a kernel row failed, beyond its verdict
    console: tuple[str, ...] = ()  # a kernel row's console lines behind a failure
    seconds: float | None = None  # a kernel row's boot time
    calls_dropped: int = 0  # a kernel row's calls not kept (it keeps the last ones)
    reference: Reference = DEFAULT_REFERENCE  # the driver the row is judged by
    stopped_by: str | None = None  # how a kernel row's boot ended (gunyah.outcome.STOPS)
    module_log: tuple[str, ...] = ()  # what a kernel row's judged module logged (the last lines)

    @property
    def expected(self) -> str:
        return self.reference.expected_verdict(self.persona)

    @property
    def passed(self) -> bool:
        return self.observed == self.expected

    def to_dict(self) -> dict[str, Any]:
        return {
            "guest": self.guest,
            "persona": self.persona.name,
            "reference": self.reference.name,
            "expected": self.expected,
            "observed": self.observed,
            "passed": self.passed,
            "calls": [c.to_dict() for c in self.calls],
            **({"reason": self.reason, "console": list(self.console), "seconds": self.seconds,
                "calls_dropped": self.calls_dropped, "stopped_by": self.stopped_by,
                "module_log": list(self.module_log)}
               if self.seconds is not None else {}),
        }  # fmt: skip


@dataclass(frozen=True)
class Matrix:
    rows: tuple[Row, ...]
    reference: Reference = DEFAULT_REFERENCE

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.rows)

    @property
    def failures(self) -> tuple[Row, ...]:
        return tuple(r for r in self.rows if not r.passed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "reference": self.reference.to_dict(),
            "total": len(self.rows),
            "failed": len(self.failures),
            "rows": [r.to_dict() for r in self.rows],
        }


def check_python(personas: Iterable[Persona], kind: Kind = "hvc") -> list[Row]:
    """The Python driver against each persona, its calls recorded at the conduit."""
    rows = []
    for p in personas:
        recorder = RecordingHandler(Hypervisor(p))
        verdict = identify(Conduit(recorder, kind)).verdict
        rows.append(Row(DRIVER_PYTHON, p, verdict, tuple(recorder.records)))
    return rows


def check_image(
    image: Image,
    personas: Iterable[Persona],
    label: str,
    *,
    initial: dict[int, int] | None = None,
    max_instructions: int = DEFAULT_MAX_INSTRUCTIONS,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[Row]:
    """An AArch64 guest against each persona; its exit status is its verdict."""
    rows = []
    for p in personas:
        cpu = VCpu(Hypervisor(p), max_instructions=max_instructions, timeout=timeout, trace=True,
                   max_calls=MAX_CALLS)  # fmt: skip
        result = cpu.run(image, initial)
        if result.fault is not None:
            observed = f"{result.stopped_by}: {result.fault.kind}: {result.fault.message}"
            calls = result.calls or result.recent
        elif result.exit_status in EXIT_VERDICTS:
            observed = EXIT_VERDICTS[result.exit_status]
            calls = result.calls
        else:
            observed = f"exit status {result.exit_status} (not a verdict: 0, 1 or 3)"
            calls = result.calls
        rows.append(Row(label, p, observed, tuple(calls)))
    return rows


def check_builtin(personas: Iterable[Persona], kind: Kind = "hvc") -> list[Row]:
    """The shipped AArch64 guest (identify.c) against each persona."""
    image = load_elf(BUILTIN_ELF)
    return check_image(image, personas, DRIVER_BUILTIN, initial={0: int(kind == "smc")})
