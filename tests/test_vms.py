"""The hypervisor's VMs and objects as the resource manager uses them (the
`Hyp` interface): each method's behaviour, and caps that resolve only in the
cspace of the VM that holds them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gunyah.abi import cspace as cs
from gunyah.abi.errors import Error
from gunyah.model import Hypervisor
from gunyah.model.vms import (
    EXIT_PLATFORM_OFF,
    EXIT_PLATFORM_RESET,
    EXIT_PSCI_SYSTEM_RESET2,
    VCPU_RUN_RIGHTS,
    VMID_HLOS,
    VMID_RM,
    HypError,
    Vms,
)

PAGE = 4096
RWX = 7
SVM = 0x80  # a VM the RM makes (VMID_DYNAMIC_BASE)
# The interface the resource manager calls (gunyah.rm.hyp.Hyp): each method's parameters
HYP_METHODS = {
    "vm_create": ("vmid", "owner"), "vm_destroy": ("vmid",),
    "translate": ("vmid", "ipa", "size"), "map": ("vmid", "ipa", "phys", "size", "rights"),
    "unmap": ("vmid", "ipa", "size"), "add_vmmio": ("vmid", "ipa", "size"),
    "add_vgic": ("vmid", "gicd", "gicr", "stride", "count"),
    "read_phys": ("phys", "size"), "write_phys": ("phys", "data"),
    "vcpu_create": ("vmid", "index", "owner"),
    "vcpu_poweron": ("vmid", "index", "entry", "context"), "vm_stop": ("vmid",),
    "random_bytes": ("n",),
    "doorbell_create": ("receiver", "virq", "sender", "sender_rights"),
}  # fmt: skip


def test_the_vmids_are_the_resource_managers() -> None:
    # quic/gunyah-resource-manager bf31a9a include/rm_types.h: VMID_HLOS 0x3, VMID_RM 0xFF
    assert (VMID_HLOS, VMID_RM) == (0x3, 0xFF)
    # src/vm_config/vm_config.c vm_config_add_vcpu: AFFINITY | YIELD_TO (guest_rights.h)
    assert VCPU_RUN_RIGHTS == 0x2 | 0x10


def test_the_model_offers_every_method_of_the_interface() -> None:
    import inspect

    vms = Vms()
    for name, params in HYP_METHODS.items():
        assert tuple(inspect.signature(getattr(vms, name)).parameters) == params, name
    assert vms.on_vm_exit is None


@pytest.fixture
def vms() -> Vms:
    v = Vms()
    v.add_ram(0x8000_0000, bytearray(16 * PAGE))
    v.vm_create(VMID_HLOS, VMID_RM)
    v.vm_create(SVM, VMID_HLOS)
    return v


def test_a_vm_created_has_an_empty_cspace_and_stage_2(vms: Vms) -> None:
    vm = vms[SVM]
    assert vm.cspace.caps == {} and vm.addrspace.mappings == [] and vm.vcpus == {}
    assert vm.owner == VMID_HLOS
    assert vm.cspace.lookup(0, "thread", 0)[0] == Error.CSPACE_CAP_NULL
    with pytest.raises(HypError) as e:
        vms.vm_create(SVM, VMID_HLOS)
    assert e.value.error is Error.ARGUMENT_INVALID


def test_vcpu_create_puts_a_run_cap_in_the_owners_cspace_only(vms: Vms) -> None:
    cap_id, virq = vms.vcpu_create(SVM, 0, VMID_HLOS)
    owner, guest = vms[VMID_HLOS].cspace, vms[SVM].cspace
    err, cap = owner.lookup(cap_id, "thread", VCPU_RUN_RIGHTS)
    assert err == Error.OK and cap is not None and cap.obj is vms[SVM].vcpus[0]
    assert guest.lookup(cap_id, "thread", 0)[0] == Error.CSPACE_CAP_NULL  # not the guest's
    assert owner.lookup(cap_id, "thread", 1 << cs.RIGHTS["thread"]["power"])[0] == (
        Error.CSPACE_INSUFFICIENT_RIGHTS)  # fmt: skip
    second, virq2 = vms.vcpu_create(SVM, 1, VMID_HLOS)
    assert second != cap_id and virq2 == virq + 1  # each vCPU its own wake-up interrupt
    with pytest.raises(HypError):
        vms.vcpu_create(SVM, 1, VMID_HLOS)


def test_translate_refuses_unmapped_and_non_contiguous_ranges(vms: Vms) -> None:
    vms.map(SVM, 0x1000_0000, 0x8000_0000, 2 * PAGE, RWX)
    vms.map(SVM, 0x1000_2000, 0x8000_2000, PAGE, RWX)  # follows on in both spaces
    vms.map(SVM, 0x1000_3000, 0x8000_8000, PAGE, RWX)  # follows in IPA, not in PA
    assert vms.translate(SVM, 0x1000_0000, 3 * PAGE) == 0x8000_0000
    assert vms.translate(SVM, 0x1000_1800, 0x1000) == 0x8000_1800
    assert vms.translate(SVM, 0x1000_3000, PAGE) == 0x8000_8000
    assert vms.translate(SVM, 0x1000_0000, 4 * PAGE) is None  # not contiguous in PA
    assert vms.translate(SVM, 0x1000_3000, 2 * PAGE) is None  # runs past the mapping
    assert vms.translate(SVM, 0x0FFF_F000, 2 * PAGE) is None  # starts before it
    assert vms.translate(SVM, 0x1000_0000, 0) is None
    assert vms.translate(VMID_HLOS, 0x1000_0000, PAGE) is None  # another VM's map
    assert vms.translate(0x1234, 0, PAGE) is None  # no such VM


def test_map_refuses_overlaps_and_what_is_not_pages(vms: Vms) -> None:
    vms.map(SVM, 0x1000_0000, 0x8000_0000, 2 * PAGE, RWX)
    for ipa, phys, size, rights, error in (
        (0x1000_1000, 0x8000_4000, PAGE, RWX, Error.EXISTING_MAPPING),
        (0x0FFF_F000, 0x8000_4000, 2 * PAGE, RWX, Error.EXISTING_MAPPING),
        (0x2000_0800, 0x8000_4000, PAGE, RWX, Error.ARGUMENT_ALIGNMENT),
        (0x2000_0000, 0x8000_4000, 0, RWX, Error.ADDR_OVERFLOW),
        (2**64 - PAGE, 0x8000_4000, 2 * PAGE, RWX, Error.ADDR_OVERFLOW),
        (0x2000_0000, 0x8000_4000, PAGE, 8, Error.ARGUMENT_INVALID),
    ):
        with pytest.raises(HypError) as e:
            vms.map(SVM, ipa, phys, size, rights)
        assert e.value.error is error
    assert len(vms[SVM].addrspace.mappings) == 1  # nothing changed


def test_unmap_removes_even_part_of_a_mapping(vms: Vms) -> None:
    vms.map(SVM, 0x1000_0000, 0x8000_0000, 4 * PAGE, RWX)
    vms.unmap(SVM, 0x1000_1000, PAGE)
    assert vms.translate(SVM, 0x1000_1000, PAGE) is None
    assert vms.translate(SVM, 0x1000_0000, PAGE) == 0x8000_0000
    assert vms.translate(SVM, 0x1000_2000, 2 * PAGE) == 0x8000_2000
    vms.unmap(SVM, 0x1000_0000, 4 * PAGE)
    assert vms[SVM].addrspace.mappings == []
    vms.unmap(SVM, 0x1000_0000, 4 * PAGE)  # nothing there: nothing to do
    vms.map(SVM, 0x1000_1000, 0x8000_0000, PAGE, RWX)  # the range is free again


def test_vmmio_ranges_are_kept(vms: Vms) -> None:
    vms.add_vmmio(SVM, 0x0A00_0000, PAGE)
    assert vms[SVM].addrspace.vmmio == [(0x0A00_0000, PAGE)]
    with pytest.raises(HypError):
        vms.add_vmmio(SVM, 0x0A00_0001, PAGE)


def test_vm_destroy_revokes_the_owners_caps_to_its_vcpus(vms: Vms) -> None:
    cap_id, _ = vms.vcpu_create(SVM, 0, VMID_HLOS)
    vms.vm_destroy(SVM)
    owner = vms[VMID_HLOS].cspace
    assert owner.lookup(cap_id, "thread", VCPU_RUN_RIGHTS) == (Error.CSPACE_CAP_REVOKED, None)
    assert owner.lookup_any(cap_id, 0, None)[0] == Error.CSPACE_CAP_REVOKED
    assert vms.translate(SVM, 0, PAGE) is None
    with pytest.raises(HypError):
        vms.vm_destroy(SVM)
    # the revoked slot stays taken; a new cap goes elsewhere
    vms.vm_create(SVM, VMID_HLOS)
    assert vms.vcpu_create(SVM, 0, VMID_HLOS)[0] != cap_id


def test_a_revoked_cap_answers_revoked_through_a_hypercall() -> None:
    """The error a guest sees for the cap of a VM that is gone."""
    hyp = Hypervisor("gunyah")
    hyp.vms.vm_create(SVM, VMID_HLOS)
    cap_id, _ = hyp.vms.vcpu_create(SVM, 0, VMID_HLOS)
    set_affinity = 0x6000 + 0x3D  # vcpu_set_affinity(cap, cpu, res1)
    res1 = 2**64 - 1
    assert cap_id == 3  # after the primary's three
    assert hyp.call(cap_id, 0, res1, imm=set_affinity)[0] == Error.OK
    hyp.vms.vm_destroy(SVM)
    assert hyp.call(cap_id, 0, res1, imm=set_affinity)[0] == Error.CSPACE_CAP_REVOKED


def test_physical_memory_is_the_ram_the_model_has(vms: Vms) -> None:
    base, end = 0x8000_0000, 0x8000_0000 + 16 * PAGE
    assert vms.write_phys(base + 8, b"gunyah")
    assert vms.read_phys(base + 8, 6) == b"gunyah"
    assert vms.read_phys(end - 4, 4) == bytes(4)
    assert vms.read_phys(end - 4, 5) is None and not vms.write_phys(end - 1, b"ab")
    assert vms.read_phys(base - 1, 2) is None and not vms.write_phys(base - 1, b"a")
    assert vms.read_phys(0, 1) is None and vms.read_phys(base, -1) is None
    assert Vms().read_phys(base, 1) is None  # no RAM at all
    with pytest.raises(ValueError, match="overlaps"):
        vms.add_ram(end - PAGE, bytearray(PAGE))


@given(st.integers(-(2**65), 2**65), st.integers(-(2**65), 2**65))
def test_physical_access_never_raises(phys: int, size: int) -> None:
    vms = Vms()
    vms.add_ram(0x4000_0000, bytearray(PAGE))
    got = vms.read_phys(phys, size)
    inside = phys >= 0x4000_0000 and size >= 0 and phys + size <= 0x4000_0000 + PAGE
    assert (got is not None) == inside and (got is None or len(got) == size)
    data = b"x" * min(max(size, 0), 64)
    assert vms.write_phys(phys, data) == (phys >= 0x4000_0000 and phys + len(data) <= 0x4000_1000)


@given(st.lists(st.tuples(st.booleans(), st.integers(0, 63), st.integers(1, 6)), max_size=30))
def test_maps_and_unmaps_agree_with_a_page_table(ops: list[tuple[bool, int, int]]) -> None:
    """Any mix of maps and unmaps (whole, part or none of a mapping) leaves
    the mappings sorted and apart, each page where a dictionary says."""
    vms = Vms()
    vms.vm_create(SVM, VMID_HLOS)
    pages: dict[int, int] = {}
    for i, (is_map, page, count) in enumerate(ops):
        span = range(page, page + count)
        if is_map:
            phys_page = 0x100 * (i + 1)
            try:
                vms.map(SVM, page * PAGE, phys_page * PAGE, count * PAGE, RWX)
            except HypError:
                assert any(p in pages for p in span)
                continue
            pages.update({p: phys_page + p - page for p in span})
        else:
            vms.unmap(SVM, page * PAGE, count * PAGE)
            for p in span:
                pages.pop(p, None)
    maps = vms.vms[SVM].addrspace.mappings
    assert all(a.end <= b.ipa for a, b in zip(maps, maps[1:], strict=False))
    for p in range(72):
        got = vms.translate(SVM, p * PAGE, PAGE)
        assert got == (pages[p] * PAGE if p in pages else None)


@given(st.lists(st.tuples(st.integers(0, 63), st.integers(1, 4)), max_size=12),
       st.integers(0, 70), st.integers(1, 8))  # fmt: skip
def test_translate_agrees_with_a_page_table(maps: list[tuple[int, int]], at: int, n: int) -> None:
    """Against a dictionary of pages: a range translates where every page of
    it is mapped and each follows the one before in physical memory."""
    vms = Vms()
    vms.vm_create(SVM, VMID_HLOS)
    pages: dict[int, int] = {}
    for i, (page, count) in enumerate(maps):
        phys_page = 0x100 * (i + 1)
        try:
            vms.map(SVM, page * PAGE, phys_page * PAGE, count * PAGE, RWX)
        except HypError:
            assert any(p in pages for p in range(page, page + count))
            continue
        pages.update({page + k: phys_page + k for k in range(count)})
    want = pages.get(at)
    for k in range(1, n):
        if want is None or pages.get(at + k) != want + k:
            want = None
    got = vms.translate(SVM, at * PAGE, n * PAGE)
    assert got == (None if want is None else want * PAGE)


def test_poweron_stop_and_the_vms_end(vms: Vms) -> None:
    exits: list[tuple[int, int, int]] = []
    vms.on_vm_exit = lambda vmid, kind, reason: exits.append((vmid, kind, reason))
    vms.vcpu_create(SVM, 0, VMID_HLOS)
    vms.vcpu_create(SVM, 1, VMID_HLOS)
    vms.vcpu_poweron(SVM, 0, 0x8000_0000, 0x1234)
    vcpu = vms[SVM].vcpus[0]
    assert (vcpu.state, vcpu.entry, vcpu.context) == ("on", 0x8000_0000, 0x1234)
    with pytest.raises(HypError) as e:
        vms.vcpu_poweron(SVM, 0, 0, 0)
    assert e.value.error is Error.BUSY
    with pytest.raises(HypError):
        vms.vcpu_poweron(SVM, 5, 0, 0)
    vms.vcpu_poweron(SVM, 1, 0x8000_0000, 0)
    vms.vcpu_poweroff(SVM, 1)
    assert exits == []  # vCPU 0 still runs
    vms.vcpu_poweroff(SVM, 0)
    assert exits == [(SVM, EXIT_PLATFORM_OFF, 0)]  # the last one off: PLATFORM_OFF
    vms.vcpu_poweron(SVM, 0, 0, 0)
    vms.vm_stop(SVM)
    assert {t.state for t in vms[SVM].vcpus.values()} == {"halted"}
    vms.system_reset(SVM)
    vms.system_reset(SVM, 1)
    vms.system_off(SVM)
    assert exits[1:] == [(SVM, EXIT_PLATFORM_RESET, 0), (SVM, EXIT_PSCI_SYSTEM_RESET2, 1),
                         (SVM, EXIT_PLATFORM_OFF, 0)]  # fmt: skip


def test_random_bytes_are_bounded(vms: Vms) -> None:
    assert len(vms.random_bytes(32)) == 32 and vms.random_bytes(0) == b""
    with pytest.raises(HypError):
        vms.random_bytes(1 << 40)


def test_the_primary_vm_and_the_resource_managers_own_their_caps() -> None:
    """The primary's three caps are as measured; the RM's VM holds the other
    end of each queue, and neither VM's caps resolve in the other."""
    hyp = Hypervisor("gunyah")
    primary, rm_vm = hyp.vms[VMID_HLOS], hyp.vms[VMID_RM]
    assert hyp.vm is primary
    q = cs.RIGHTS["msgqueue"]
    send, receive = 1 << q["send"], 1 << q["receive"]
    caps = primary.cspace.caps
    assert [(c.object_type, c.rights) for c in caps.values()] == [
        ("msgqueue", send), ("msgqueue", receive), ("thread", 1 << cs.RIGHTS["thread"]["affinity"])]
    assert list(caps) == [0, 1, 2]
    ends = {id(c.obj): c.rights for c in rm_vm.cspace.caps.values()}
    assert ends == {id(caps[0].obj): receive, id(caps[1].obj): send}
    assert caps[2].obj is rm_vm.vcpus[0]
    assert rm_vm.cspace.lookup(2, "thread", 0)[0] == Error.CSPACE_CAP_NULL
    assert Hypervisor("kvm").vms.vms.keys() == {VMID_HLOS}  # no RM, no queues


def test_the_primary_vms_ram_is_mapped_where_it_is() -> None:
    hyp = Hypervisor("gunyah")
    ram = bytearray(4 * PAGE)
    hyp.attach_ram(0x4000_0000, ram)
    assert hyp.vms.translate(VMID_HLOS, 0x4000_1000, 3 * PAGE) == 0x4000_1000  # IPA == PA
    assert hyp.vms.translate(VMID_HLOS, 0x4000_1000, 4 * PAGE) is None
    assert hyp.vms.write_phys(0x4000_0010, b"dtb") and ram[0x10:0x13] == b"dtb"
    with pytest.raises(ValueError):
        hyp.attach_ram(0x4000_2000, bytearray(PAGE))  # RAM there already
