"""Facts the project keeps once, each held to the source that gives it."""

from __future__ import annotations

import pytest

from gunyah import psci, smccc
from gunyah.abi import hvc
from gunyah.abi.identify import FEATURES, FLAGS
from gunyah.model import personas, trng


def test_psci_function_numbers_are_linuxs() -> None:
    # include/uapi/linux/psci.h: PSCI_0_2_FN_*, PSCI_1_0_FN_*, PSCI_1_1_FN_SYSTEM_RESET2
    first_ten = (psci.VERSION, psci.CPU_SUSPEND, psci.CPU_OFF, psci.CPU_ON,
                 psci.AFFINITY_INFO, psci.MIGRATE, psci.MIGRATE_INFO_TYPE,
                 psci.MIGRATE_INFO_UP_CPU, psci.SYSTEM_OFF, psci.SYSTEM_RESET)  # fmt: skip
    assert first_ten == (0, 1, 2, 3, 4, 5, 6, 7, 8, 9)
    assert (psci.FEATURES, psci.CPU_DEFAULT_SUSPEND, psci.SYSTEM_SUSPEND,
            psci.SET_SUSPEND_MODE, psci.SYSTEM_RESET2) == (0xA, 0xC, 0xE, 0xF, 0x12)  # fmt: skip


def test_trng_function_numbers_are_arms() -> None:
    # include/linux/arm-smccc.h: ARM_SMCCC_TRNG_VERSION 0x84000050 .. RND64 0xC4000053
    assert smccc.fast32(smccc.OWNER_STANDARD, trng.VERSION) == 0x84000050
    assert smccc.fast32(smccc.OWNER_STANDARD, trng.FEATURES) == 0x84000051
    assert smccc.fast32(smccc.OWNER_STANDARD, trng.GET_UUID) == 0x84000052
    assert smccc.fast64(smccc.OWNER_STANDARD, trng.RND) == 0xC4000053


def test_psci_and_trng_numbers_come_from_the_one_table() -> None:
    table = smccc.STANDARD_SECURE_CALLS
    assert table[psci.CPU_ON] == "PSCI_CPU_ON" and table[psci.SYSTEM_RESET2] == "PSCI_SYSTEM_RESET2"
    assert table[trng.RND] == "TRNG_RND" and table[trng.GET_UUID] == "TRNG_GET_UUID"


def test_api_flag_names_are_declared_once() -> None:
    """API flags 0's features, bit by bit (quic/gunyah-hypervisor
    hyp/interfaces/api/api.tc and the interfaces that extend hyp_api_flags0),
    are what personas build from and declarations name."""
    assert {FLAGS[0][n].lsb: n for n in FEATURES} == {
        0: "partition-cspace", 1: "doorbell", 2: "msgqueue", 3: "vic", 4: "vpm", 5: "vcpu",
        6: "memextent", 7: "trace-ctrl", 8: "watchdog", 9: "virtio-mmio", 10: "prng",
        11: "vcpu-run"}  # fmt: skip
    assert personas.FULL_BUILD_FEATURES == FEATURES
    assert {c.feature for c in hvc.DECLARED.values()} - {None} <= set(FEATURES)


def test_a_declaration_of_an_unknown_feature_is_refused() -> None:
    text = "call 0x01 x\n  feature watchdgo\n"
    with pytest.raises(hvc.DeclarationError, match="feature 'watchdgo'"):
        hvc.parse(text, "t.hvc")
    assert hvc.parse(text.replace("watchdgo", "watchdog"))[0].feature == "watchdog"


def test_the_push_flag_is_the_hypervisors() -> None:
    """hyp/interfaces/msgqueue/msgqueue.tc: msgqueue_send_flags bit 0 is push;
    our module's header and the RM client send that bit."""
    from gunyah.abi import msgqueue
    from gunyah.boot.modules import abi_header

    assert msgqueue.PUSH == 1 << 0
    assert msgqueue.SEND_FLAGS.decode(1)["push"] is True
    assert "#define GUNYAH_MSGQ_PUSH 1\n" in abi_header()
