"""The /dev/gunyah UAPI (gunyah.abi.vm_manager) against the numbers and
layouts its header publishes: Android's 6.1 common kernel (android14-6.1),
include/uapi/linux/gunyah.h, the Linux series' v14 with Android's 'A' ioctls.
Each expected number is worked out here by hand from asm-generic/ioctl.h
(dir << 30 | size << 16 | type << 8 | nr) and the header's struct sizes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gunyah.abi import vm_manager as vmm
from gunyah.toolchain import VMM_UAPI_HEADER

# name: (dir, type, nr, size) as the header's _IO/_IOW give them, and the number
EXPECTED_IOCTLS = {
    "GH_CREATE_VM": (0, "G", 0x0, 0, 0x4700),
    "GH_VM_SET_USER_MEM_REGION": (1, "G", 0x1, 32, 0x40204701),
    "GH_VM_SET_DTB_CONFIG": (1, "G", 0x2, 16, 0x40104702),
    "GH_VM_START": (0, "G", 0x3, 0, 0x4703),
    "GH_VM_ADD_FUNCTION": (1, "G", 0x4, 16, 0x40104704),
    "GH_VCPU_RUN": (0, "G", 0x5, 0, 0x4705),
    "GH_VCPU_MMAP_SIZE": (0, "G", 0x6, 0, 0x4706),
    "GH_VM_REMOVE_FUNCTION": (1, "G", 0x7, 16, 0x40104707),
    "GH_ANDROID_TENTATIVE_UAPI": (0, "A", 0x10, 0, 0x4110),
    "GH_VM_ANDROID_LEND_USER_MEM": (1, "A", 0x11, 32, 0x40204111),
    "GH_VM_ANDROID_SET_FW_CONFIG": (1, "A", 0x12, 16, 0x40104112),
}

# struct: (sizeof, {member: offsetof}) for the header's arm64 layout
EXPECTED_STRUCTS = {
    "gh_userspace_memory_region": (32, {"label": 0, "flags": 4, "guest_phys_addr": 8,
                                        "memory_size": 16, "userspace_addr": 24}),
    "gh_vm_dtb_config": (16, {"guest_phys_addr": 0, "size": 8}),
    "gh_fn_vcpu_arg": (4, {"id": 0}),
    "gh_fn_irqfd_arg": (16, {"fd": 0, "label": 4, "flags": 8, "padding": 12}),
    "gh_fn_ioeventfd_arg": (32, {"datamatch": 0, "addr": 8, "len": 16, "fd": 20, "flags": 24,
                                 "padding": 28}),
    "gh_fn_desc": (16, {"type": 0, "arg_size": 4, "arg": 8}),
    "gh_vm_exit_info": (16, {"type": 0, "padding": 2, "reason_size": 4, "reason": 8}),
    "gh_vcpu_run": (40, {
        "immediate_exit": 0, "padding": 1, "exit_reason": 8,
        "mmio.phys_addr": 16, "mmio.data": 24, "mmio.len": 32, "mmio.is_write": 36,
        "status.status": 16, "status.exit_info.type": 20, "status.exit_info.padding": 22,
        "status.exit_info.reason_size": 24, "status.exit_info.reason": 28,
    }),
    "gh_vm_firmware_config": (16, {"guest_phys_addr": 0, "size": 8}),
}  # fmt: skip

EXPECTED_CONSTANTS = {
    "GH_MEM_ALLOW_READ": 1, "GH_MEM_ALLOW_WRITE": 2, "GH_MEM_ALLOW_EXEC": 4,
    "GH_FN_VCPU": 1, "GH_FN_IRQFD": 2, "GH_FN_IOEVENTFD": 3, "GH_FN_MAX_ARG_SIZE": 256,
    "GH_IRQFD_LEVEL": 1, "GH_IOEVENTFD_FLAGS_DATAMATCH": 1,
    "GH_VM_STATUS_LOAD_FAILED": 1, "GH_VM_STATUS_EXITED": 2, "GH_VM_STATUS_CRASHED": 3,
    "GH_VM_MAX_EXIT_REASON_SIZE": 8,
    "GH_VCPU_EXIT_UNKNOWN": 0, "GH_VCPU_EXIT_MMIO": 1, "GH_VCPU_EXIT_STATUS": 2,
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(EXPECTED_IOCTLS))
def test_ioctl_numbers_are_the_headers(name: str) -> None:
    direction, type_, nr, size, number = EXPECTED_IOCTLS[name]
    assert (direction << 30 | size << 16 | ord(type_) << 8 | nr) == number  # the sum, redone
    i = vmm.BY_NAME[name]
    assert (i.type, i.nr, i.arg.size if i.arg else 0) == (ord(type_), nr, size)
    assert i.number == number


def test_every_declared_ioctl_is_checked() -> None:
    assert set(vmm.BY_NAME) == set(EXPECTED_IOCTLS)


@pytest.mark.parametrize("name", sorted(EXPECTED_STRUCTS))
def test_struct_layouts_are_the_headers(name: str) -> None:
    size, offsets = EXPECTED_STRUCTS[name]
    (s,) = [s for s in vmm.STRUCTS if s.name == name]
    assert s.size == size
    assert s.paths() == offsets


def test_constants_are_the_headers() -> None:
    assert vmm.CONSTANTS == EXPECTED_CONSTANTS


@given(st.integers(0, 3), st.integers(0, 255), st.integers(0, 255), st.integers(0, (1 << 14) - 1))
def test_ioc_fields_come_back_out(direction: int, type_: int, nr: int, size: int) -> None:
    n = vmm.ioc(direction, type_, nr, size)
    assert (n >> 30, (n >> 16) & 0x3FFF, (n >> 8) & 0xFF, n & 0xFF) == (direction, size, type_, nr)


@pytest.mark.parametrize("bad", [(1, 0x100, 0, 0), (1, 0, 0x100, 0), (1, 0, 0, 1 << 14)])
def test_ioc_refuses_fields_that_do_not_fit(bad: tuple[int, int, int, int]) -> None:
    with pytest.raises(ValueError):
        vmm.ioc(*bad)


def test_header_declares_every_number_and_checks_every_layout() -> None:
    text = vmm.c_header()
    for name, (*_, number) in EXPECTED_IOCTLS.items():
        assert f"#define {name} {number:#x}U" in text
    for name, (size, offsets) in EXPECTED_STRUCTS.items():
        assert f"sizeof(struct {name}) == {size}" in text
        for member, at in offsets.items():
            assert f"__builtin_offsetof(struct {name}, {member}) == {at}" in text


def test_committed_header_is_fresh() -> None:
    assert VMM_UAPI_HEADER.read_text() == vmm.c_header(), (
        "src/gunyah/vmm/gunyah_uapi.h is stale: run python -m gunyah.toolchain and commit it"
    )
