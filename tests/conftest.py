"""Shared test settings: a hypothesis profile that suits shared, noisy machines,
the package's bytecode compiled once, and no state of the fdt library kept
from one test to the next."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "project",
    deadline=None,
    max_examples=300,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "project"))

ROOT = Path(__file__).resolve().parent.parent


def pytest_configure(config: pytest.Config) -> None:
    """The package's bytecode, compiled once before any test starts the
    command: an editable install leaves none, and where PYTHONDONTWRITEBYTECODE
    is set (CI machines set it) every `gunyah` process the tests start would
    compile the whole package from source again, 0.2 CPU-seconds each. What a
    regular pip install compiles at install time, in the same __pycache__
    directories (ignored by git)."""
    if "PYTEST_XDIST_WORKER" in os.environ:
        return  # the controller did it before starting the workers
    import compileall

    import gunyah

    compileall.compile_dir(Path(gunyah.__file__).parent, quiet=2)


@pytest.fixture(autouse=True)
def _no_reserve_map_shared_between_tests() -> Iterator[None]:
    """The fdt library's trees share one reserve list (FDT's default
    argument), to which parse_dtb appends what each tree reserves: emptied
    after every test, so that trees a property test parsed by the thousand
    neither slow nor change another test's (docs/boot.md section 2)."""
    yield
    import fdt

    shared = fdt.FDT.__init__.__defaults__[1]
    shared.clear()


GUESTS_SRC = Path(__file__).resolve().parent / "guests"


@pytest.fixture(scope="session")
def guests(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every test guest under tests/guests, built once per session with ziglang."""
    from gunyah.toolchain import build

    out = tmp_path_factory.mktemp("guests")
    built = {}
    for src in sorted(GUESTS_SRC.rglob("*.c")):
        name = src.relative_to(GUESTS_SRC).with_suffix("").as_posix()
        # the foreign guest is built as its author might: no optimisation
        extra = ("-O0",) if name == "foreign" else ()
        built[name] = build([src], out / f"{name.replace('/', '-')}.elf", extra)
    return built


MODULES_SRC = Path(__file__).resolve().parent / "modules"


@pytest.fixture(scope="session")
def modules_built(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Under pytest-xdist, the modules the boot tests load are built before
    any of them boots, by one worker while the others wait: boots on two
    workers that build the same module at once would both write its one
    cache entry. (Run alone, each boot builds what it needs, as a user's.)"""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return
    import fcntl

    from gunyah.boot import modules
    from gunyah.boot.kernel import MissingPart, find_parts

    try:
        headers = find_parts().headers
    except MissingPart:
        return  # the boot tests say so themselves
    made_by_the_test = {"broken.c", "semihosting.c"}  # a compiler error; a template
    sources = [modules.IDENTIFY_SOURCE, modules.VM_MANAGER_SOURCE,
               *(src for src in sorted(MODULES_SRC.rglob("*.c"))
                                          if src.name not in made_by_the_test)]  # fmt: skip

    # every worker's base directory is in the same one
    with open(tmp_path_factory.getbasetemp().parent / "modules.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with contextlib.suppress(modules.ModuleError):  # the boot that needs one says why
            modules.build_all(sources, headers)  # one kbuild run for them all
