"""The services' registration: what is registered is declared, once, and a
persona's services never answer one call twice; each mistake raises where
it is made, with nothing registered."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gunyah import smccc
from gunyah.abi.hvc import BY_NAME
from gunyah.model import PERSONAS, Hypervisor, get_persona
from gunyah.model.services import registry
from gunyah.model.services.registry import RegistrationError


@pytest.fixture
def scratch() -> Iterator[None]:
    """Registrations a test makes are dropped after it: the tables are put
    back as they were, in place (the dispatcher holds them)."""
    tables = (registry.SERVICES, registry.NATIVE_HANDLERS, registry.NATIVE_PRECHECKS)
    saved = [dict(t) for t in tables]
    constant = set(registry.NATIVE_CONSTANT)
    yield
    for table, before in zip(tables, saved, strict=True):
        table.clear()
        table.update(before)
    registry.NATIVE_CONSTANT.clear()
    registry.NATIVE_CONSTANT.update(constant)


def _none(hyp: object, f: smccc.FunctionId) -> None:
    return None


def _tables() -> tuple[object, ...]:
    return (dict(registry.SERVICES), dict(registry.NATIVE_HANDLERS),
            dict(registry.NATIVE_PRECHECKS))  # fmt: skip


@pytest.mark.usefixtures("scratch")
def test_a_native_handler_for_an_undeclared_or_misspelled_call_raises() -> None:
    before = _tables()
    with pytest.raises(RegistrationError, match="no hypercall is declared as 'msgqueue_sned'"):
        registry.native("msgqueue_sned")
    with pytest.raises(RegistrationError, match="declared"):
        registry.native("partition_create_universe")
    with pytest.raises(RegistrationError, match="declared"):
        registry.precheck("vcpu_confgure", (1, 1, 1))
    assert _tables() == before


@pytest.mark.usefixtures("scratch")
def test_two_handlers_for_one_native_call_raise() -> None:
    assert "msgqueue_send" in registry.NATIVE_HANDLERS
    before = _tables()
    with pytest.raises(RegistrationError, match="msgqueue_send has a handler already"):
        registry.native("msgqueue_send")
    with pytest.raises(RegistrationError, match="prechecks already"):
        registry.precheck("addrspace_map", (3, 1, 1))
    assert _tables() == before


@pytest.mark.usefixtures("scratch")
def test_a_precheck_of_an_argument_the_call_lacks_raises() -> None:
    n = len(BY_NAME["doorbell_send"].inputs)
    with pytest.raises(RegistrationError, match=f"no argument {n}"):
        registry.precheck("doorbell_send", (n, 1, 1))


@pytest.mark.usefixtures("scratch")
def test_a_new_native_handler_is_served() -> None:
    """Registering the handler of a declared call is all it takes: it runs
    once the call's lookups pass, with the caps they found."""
    from gunyah.abi import cspace
    from gunyah.model.vms import Doorbell

    seen = []
    del registry.NATIVE_HANDLERS["doorbell_send"]  # the model's own, put back after

    @registry.native("doorbell_send")
    def send(ctx: object, args: list[int], caps: list[cspace.Cap]) -> tuple[int, ...]:
        seen.append(caps[0].obj)
        return (0, args[1] ^ 1)

    hyp = Hypervisor("gunyah")
    number = BY_NAME["doorbell_send"].number
    # the primary VM holds no doorbell: slot 0 is its queue to the RM
    assert hyp.call(0, 6, imm=0x6000 + number)[:2] == [52, 0]  # CSPACE_WRONG_OBJECT_TYPE
    bell = Doorbell()
    cap = hyp.vm.grant(bell, "doorbell", 1 << cspace.RIGHTS["doorbell"]["send"])
    assert hyp.call(cap, 6, imm=0x6000 + number)[:2] == [0, 7]
    assert seen == [bell]


@pytest.mark.usefixtures("scratch")
def test_an_smccc_service_of_an_undeclared_call_raises() -> None:
    before = _tables()
    with pytest.raises(RegistrationError, match="no SMCCC call is named 'SMCCC_VERSON'"):
        registry.declared_calls("bad", {"SMCCC_VERSON": _none})
    with pytest.raises(RegistrationError, match="one owner"):
        registry.declared_calls("bad", {"SMCCC_VERSION": _none, "PSCI_VERSION": _none})
    with pytest.raises(RegistrationError, match="not its calls"):
        registry.declared_calls("bad", {"SMCCC_VERSION": _none}, advertised=["PSCI_VERSION"])
    with pytest.raises(RegistrationError, match="16-bit"):
        registry.owned_range("bad", smccc.OWNER_OEM, range(0xFFFF, 0x10001), _none)
    with pytest.raises(RegistrationError, match="not an SMCCC owner"):
        registry.owned_range("bad", 64, range(2), _none)
    assert _tables() == before


@pytest.mark.usefixtures("scratch")
def test_two_services_of_one_name_raise() -> None:
    with pytest.raises(RegistrationError, match="'psci' is registered twice"):
        registry.owned_range("psci", smccc.OWNER_OEM, range(4), _none)


@pytest.mark.usefixtures("scratch")
def test_a_persona_whose_services_answer_one_call_twice_is_refused() -> None:
    gunyah = get_persona("gunyah")
    with pytest.raises(RegistrationError, match="'psci' and 'psci-kvm' both answer"):
        replace(gunyah, services=(*gunyah.services, "psci-kvm"))
    with pytest.raises(RegistrationError, match="'vendor-hyp' and 'kvm'"):
        replace(gunyah, services=(*gunyah.services, "kvm"))
    # TRNG and PSCI share an owner, not a call
    assert replace(gunyah, services=(*gunyah.services, "trng")).services[-1] == "trng"
    registry.owned_range("oem-low", smccc.OWNER_OEM, range(0, 8), _none)
    registry.owned_range("oem-high", smccc.OWNER_OEM, range(7, 16), _none)
    with pytest.raises(RegistrationError, match="'oem-low' and 'oem-high'"):
        replace(gunyah, services=(*gunyah.services, "oem-low", "oem-high"))


def test_a_persona_naming_an_unknown_service_is_refused() -> None:
    with pytest.raises(RegistrationError, match="no service is named 'pcsi'"):
        replace(get_persona("gunyah"), services=("arch", "pcsi"))


def test_every_service_is_of_its_declared_calls() -> None:
    """The calls registered by name are where SMCCC's tables put them, and a
    service advertises only calls it answers."""
    arch = registry.SERVICES["arch"]
    assert (arch.owner, set(arch.functions)) == (smccc.OWNER_ARCH, {0, 1})
    assert arch.advertised == {smccc.FUNC_SMCCC_VERSION, smccc.FUNC_ARCH_FEATURES}
    std = registry.SERVICES["std-hyp"]
    assert (std.owner, set(std.functions)) == (smccc.OWNER_STANDARD_HYP, {0xFF01, 0xFF03})
    assert std.advertised == {smccc.FUNC_CALL_UID}
    assert set(registry.SERVICES["trng"].functions) == set(range(0x50, 0x60))
    assert set(registry.SERVICES["psci"].functions) == set(range(0x20))
    for s in registry.SERVICES.values():
        assert s.advertised <= set(s.functions)
    for name in registry.NATIVE_HANDLERS:
        assert name in BY_NAME


def test_each_persona_lists_registered_services() -> None:
    for p in PERSONAS:
        assert all(s in registry.SERVICES for s in p.services), p.name
    assert get_persona("gunyah-qemu").services[-2:] == ("psci-pc", "trng")
    assert "vendor-hyp" not in get_persona("native-only").services
    assert get_persona("none").services == ()


@given(st.integers(0, smccc.MASK32))
def test_a_call_goes_to_the_one_service_that_answers_it(fid: int) -> None:
    """The lookup finds at most one service of a persona for any ID."""
    f = smccc.FunctionId.decode(fid)
    for p in PERSONAS:
        owners = [s for s in registry.check_services(p.services)
                  if s.owner == f.owner and s.answers(f.function)]  # fmt: skip
        assert len(owners) <= 1
