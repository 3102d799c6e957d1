"""Where services and native handlers register, checked as they do.

An SMCCC service answers the calls of one owner in a set of function
numbers, named either as a range it owns (PSCI 0x00..0x1f, TRNG 0x50..0x5f)
or as the calls it serves by the names the SMCC convention and its
companions give them (`smccc.generic_name`: SMCCC_VERSION, STD_HYP_CALL_UID
...). A native handler registers by the name its call is declared with in
abi/hvc/*.hvc. As the hypervisor's own event files subscribe handlers by
declaration (quic/gunyah-hypervisor hyp/vm/smccc/smccc.ev, each module's
.ev), a registration that names a call nobody declared, or a call that
already has a handler, raises `RegistrationError` there and then: at
import, not as a silent UNIMPLEMENTED at run time.

Which services a VM gets is its persona's list (model.personas); two
services of one list that answer the same call are refused when the
persona is made.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from ... import smccc
from ...abi.hvc import BY_NAME
from ...conduit import Action

if TYPE_CHECKING:
    from ..context import Handler
    from ..hypervisor import Hypervisor

Route = Callable[[list[int]], Action | None]
# What a service makes for one call of one VM: its route, or None for the
# dispatcher's default (an unhandled call)
MakeRoute = Callable[["Hypervisor", smccc.FunctionId], Route | None]


class RegistrationError(ValueError):
    """A handler names no declared call, or a call that has one already."""


def _smccc_declared() -> dict[str, tuple[int, int]]:
    """Every fast call SMCCC's tables name: name -> (owner, function)."""
    names: dict[str, tuple[int, int]] = {}
    for owner in range(smccc.OWNER_MASK + 1):
        for function in (*smccc.WELL_KNOWN.get(owner, {}), *smccc.GENERAL_QUERIES):
            name = smccc.generic_name(smccc.FunctionId.decode(smccc.fast32(owner, function)))
            if name is not None:
                names.setdefault(name, (owner, function))
    return names


SMCCC_DECLARED = _smccc_declared()


@dataclass(frozen=True)
class Service:
    """One SMCCC service: the calls of `owner` it answers (`functions`), how
    it makes a VM's route for one, and those SMCCC_ARCH_FEATURES reports."""

    name: str
    owner: int
    functions: Collection[int]
    make: MakeRoute
    advertised: frozenset[int] = frozenset()

    def answers(self, function: int) -> bool:
        return function in self.functions


SERVICES: dict[str, Service] = {}


def register(service: Service) -> Service:
    """Add a service; its name must be new and its owner and functions real."""
    if service.name in SERVICES:
        raise RegistrationError(f"service {service.name!r} is registered twice")
    if not 0 <= service.owner <= smccc.OWNER_MASK:
        raise RegistrationError(f"{service.name}: owner {service.owner} is not an SMCCC owner")
    if not service.functions or not all(0 <= f <= 0xFFFF for f in (min(service.functions),
                                                                    max(service.functions))):
        raise RegistrationError(f"{service.name}: functions must be 16-bit numbers")  # fmt: skip
    if not service.advertised <= set(service.functions):
        raise RegistrationError(f"{service.name}: advertises a call it does not answer")
    SERVICES[service.name] = service
    return service


def owned_range(name: str, owner: int, functions: range, make: MakeRoute) -> Service:
    """A service owning a range of function numbers of one owner."""
    return register(Service(name, owner, functions, make))


def declared_calls(
    name: str, calls: dict[str, MakeRoute], advertised: Iterable[str] = ()
) -> Service:
    """A service of the calls named, by their SMCCC names: one owner's, each
    declared (SMCCC_DECLARED); `advertised` those SMCCC_ARCH_FEATURES reports."""
    where: dict[int, MakeRoute] = {}
    owners = set()
    for call, make_route in calls.items():
        if call not in SMCCC_DECLARED:
            raise RegistrationError(f"{name}: no SMCCC call is named {call!r}")
        owner, function = SMCCC_DECLARED[call]
        owners.add(owner)
        where[function] = make_route
    if len(owners) != 1:
        raise RegistrationError(f"{name}: its calls must be of one owner, not {sorted(owners)}")
    ads = set(advertised)
    if not ads <= set(calls):
        raise RegistrationError(f"{name}: advertises {sorted(ads - set(calls))}, not its calls")

    def route_of(hyp: Hypervisor, f: smccc.FunctionId) -> Route | None:
        return where[f.function](hyp, f)

    return register(Service(name, owners.pop(), frozenset(where), route_of,
                            frozenset(SMCCC_DECLARED[c][1] for c in ads)))  # fmt: skip


def check_services(names: Iterable[str]) -> tuple[Service, ...]:
    """The services a persona lists: each registered, no two answering one call."""
    services = []
    for n in names:
        if n not in SERVICES:
            raise RegistrationError(f"no service is named {n!r}; known: {', '.join(SERVICES)}")
        services.append(SERVICES[n])
    for i, a in enumerate(services):
        for b in services[i + 1 :]:
            if a.owner == b.owner and set(a.functions) & set(b.functions):
                raise RegistrationError(f"services {a.name!r} and {b.name!r} both answer "
                                        f"calls of owner {a.owner}")  # fmt: skip
    return tuple(services)


# -- the native table -------------------------------------------------------------
NATIVE_HANDLERS: dict[str, Handler] = {}
# Checks on flag arguments before any lookup: (argument index, reserved bits, error)
NATIVE_PRECHECKS: dict[str, tuple[tuple[int, int, int], ...]] = {}

H = TypeVar("H")


def _declared(name: str) -> None:
    if name not in BY_NAME:
        raise RegistrationError(f"no hypercall is declared as {name!r} (abi/hvc/*.hvc)")


# Calls whose answer depends on the build alone: their routes are made once,
# constant writes (the hot path of every guest that identifies)
NATIVE_CONSTANT: set[str] = set()


def native(name: str, constant: bool = False) -> Callable[[H], H]:
    """Register the decorated function as the handler of declared call `name`
    (`constant`: its answer is the build's, whatever the arguments)."""
    _declared(name)
    if name in NATIVE_HANDLERS:
        raise RegistrationError(f"{name} has a handler already")

    def register_handler(handler: H) -> H:
        NATIVE_HANDLERS[name] = handler  # type: ignore[assignment]
        if constant:
            NATIVE_CONSTANT.add(name)
        return handler

    return register_handler


def precheck(name: str, *checks: tuple[int, int, int]) -> None:
    """The flag checks of declared call `name`, each (argument, reserved bits, error)."""
    _declared(name)
    if name in NATIVE_PRECHECKS:
        raise RegistrationError(f"{name} has its prechecks already")
    n_inputs = len(BY_NAME[name].inputs)
    for index, _bits, _error in checks:
        if not 0 <= index < n_inputs:
            raise RegistrationError(f"{name} has no argument {index}")
    NATIVE_PRECHECKS[name] = checks
