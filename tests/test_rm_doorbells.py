"""Doorbells the resource manager makes for a VM's `doorbell` vdevices: the
parser's checks (quic/gunyah-resource-manager bf31a9a src/vm_config/
vm_config_parser.c parse_doorbell, read_interrupts_config,
parse_general_vdevice_props), the doorbell made at VM_INIT (vm_config.c
handle_doorbell, configure_doorbell_with_peer; src/irq_manager/irq_manager.c
for the virq), the owner's VM_GET_HYP_RESOURCES entry
(get_vdev_doorbell_desc) and the node written into the VM's tree at
VM_START (src/vm_creation/dto_construct.c dto_create_doorbell)."""

from __future__ import annotations

import struct

import fdt
from hypothesis import given, settings
from hypothesis import strategies as st
from test_rm_vms import (
    DT_OFFSET,
    ID,
    VMID,
    Rig,
    config_image,
    init_error,
    ready,
    share,
    status,
    vmid_word,
)

from gunyah.abi import cspace as cs
from gunyah.abi import rm
from gunyah.guest.vm_tree import vm_device_tree
from gunyah.rm import vm_config as vc
from gunyah.rm import vm_mgnt

E = rm.ERROR_CODES


def bell(name: str = "irq", *props: fdt.Property, kind: str = "doorbell",
         peer_default: bool = True) -> fdt.Node:  # fmt: skip
    node = fdt.Node(name)
    node.append(fdt.PropStrings("vdevice-type", kind))
    if peer_default:
        node.append(fdt.Property("peer-default"))
    for p in props:
        node.append(p)
    return node


def tree(*bells: fdt.Node) -> bytes:
    return vm_device_tree(vdevices=bells)


def resources(rig: Rig) -> list[dict[str, int]]:
    error, data = rig.ask("VM_GET_HYP_RESOURCES", vmid_word())
    assert error == 0
    decoded = rm.decode_reply(ID["VM_GET_HYP_RESOURCES"], data)
    assert decoded is not None
    return list(decoded["entries"])


def started_tree(rig: Rig) -> vc.Tree:
    assert rig.send("VM_START", vmid_word())[-1][3][:4] == bytes(4)
    size = int.from_bytes(rig.hyp.ram[DT_OFFSET + 4 : DT_OFFSET + 8], "big")
    t = vc.load(bytes(rig.hyp.ram[DT_OFFSET : DT_OFFSET + size]))
    assert t is not None
    return t


def test_constants_are_the_sources() -> None:
    # irq_manager.c irq_manager_vm_init: a VM's own virqs from 960;
    # arch/gicv3/src/irq_gic.c arch_irq_global_valid: 32..1019
    assert (vm_mgnt.VIRQ_ALLOC_BASE, vm_mgnt.SPI_FIRST, vm_mgnt.SPI_LAST) == (960, 32, 1019)
    # include/guest_rights.h, and the hypervisor's cap_rights_doorbell bits
    assert (vm_mgnt.DOORBELL_SEND, vm_mgnt.DOORBELL_RECEIVE) == (0x1, 0x2)
    rights = cs.RIGHTS["doorbell"]
    assert [1 << rights["send"], 1 << rights["receive"]] == [0x1, 0x2]
    # include/vm_resource_msg.h RSC_DOORBELL_SRC (the Linux series' GH_RESOURCE_TYPE_BELL_TX)
    assert vm_mgnt.RESOURCE_DOORBELL_SRC == 0 and rm.RESOURCE_TYPES[0] == "DOORBELL_SRC"
    # include/vm_config.h; include/dt_linux.h; dto_construct.c; vm_config.c
    assert vc.MAX_PUSH_COMPATIBLES == 6
    assert (vc.DT_GIC_SPI, vc.DT_GIC_PPI, vc.DT_GIC_ESPI, vc.DT_GIC_EPPI) == (0, 1, 2, 3)
    assert (vc.DT_GIC_IRQ_TYPE_EDGE_RISING, vc.DT_GIC_IRQ_TYPE_LEVEL_HIGH) == (1, 4)
    assert vc.IRQ_CLASSES == {0: (32, 1020, False), 1: (16, 32, True),
                              2: (4096, 5120, False), 3: (1056, 1120, True)}  # fmt: skip
    assert vc.DOORBELL_COMPATIBLE == ("qcom,gunyah-doorbell", "qcom,gunyah-capability")
    assert vc.DOORBELL_GENERATE == "/hypervisor/qcom,doorbell"


def test_a_peer_default_doorbell_is_made_and_given_to_the_owner() -> None:
    """The VM's cap (receive) first, then its owner's (send); the virq the
    first of the VM's own, 960; the owner's entry after its vCPU's: type
    DOORBELL_SRC, partner the VM, the label, its cap, virq 0."""
    rig = Rig()
    ready(rig, tree(bell("irq", fdt.PropWords("label", 7))))
    assert rig.hyp.named("doorbell_create") == [("doorbell_create", VMID, 960, 3, 1)]
    entries = resources(rig)
    assert [e["resource_type"] for e in entries] == [4, 0]
    db = entries[1]
    assert (db["partner_vmid"], db["label"], db["cap_id"], db["virq"]) == (VMID, 7, 4, 0)
    assert (db["handle"], db["virq_handle"], db["base"], db["size"]) == (0, 0, 0, 0)
    # the bytes: u8 type, u8 0, u16 partner, u32 handle, u32 label, u64 cap, u32 0, u32 virq, ...
    _, data = rig.ask("VM_GET_HYP_RESOURCES", vmid_word())
    assert data[:4] == struct.pack("<I", 2)
    assert data[4 + 44 : 4 + 44 + 28] == bytes.fromhex(
        "00008000" "00000000" "07000000" "0400000000000000" "00000000" "00000000")  # fmt: skip


def test_the_vm_is_given_the_doorbell_in_its_tree() -> None:
    rig = Rig()
    push = fdt.PropStrings("push-compatible", "vendor,bell")
    ready(rig, tree(bell("irq", fdt.PropWords("qcom,label", 5), push)))
    node = vc.find(started_tree(rig), "/hypervisor/qcom,doorbell@0")
    assert node is not None
    assert vc.strings(node, "compatible") == [
        "vendor,bell",
        "qcom,gunyah-doorbell",
        "qcom,gunyah-capability",
    ]
    assert vc.raw(node, "reg") == struct.pack(">II", 0, 0)  # the VM's cap ID, 64 bits
    assert vc.raw(node, "interrupts") == struct.pack(">3I", 0, 960 - 32, 1)  # SPI 928, edge
    assert (vc.u32(node, "qcom,label"), vc.u32(node, "label")) == (5, 5)
    assert [p.name for p in node.props] == [
        "compatible",
        "reg",
        "interrupts",
        "qcom,label",
        "label",
    ]


def test_the_virqs_the_vm_asks_for_and_those_picked() -> None:
    spi = fdt.PropWords("interrupts", 0, 8, 4)  # SPI 8: ID 40, level high
    rig = Rig()
    ready(rig, tree(bell("a"), bell("b", spi), bell("c")))
    assert [c[2] for c in rig.hyp.named("doorbell_create")] == [960, 40, 961]
    t = started_tree(rig)
    assert vc.raw(vc.find(t, "/hypervisor/qcom,doorbell@1"), "interrupts") == struct.pack(
        ">3I", 0, 8, 4
    )
    # an SPI asked for that is mapped already, a PPI, an extended SPI: NORESOURCE
    for refused in (tree(bell("a", spi), bell("b", spi)),
                    tree(bell("b", fdt.PropWords("interrupts", 1, 3, 4))),
                    tree(bell("b", fdt.PropWords("interrupts", 2, 3, 1)))):  # fmt: skip
        assert init_error(refused) == E["NORESOURCE"]
    # a malformed `interrupts` defines none: the RM picks
    rig = Rig()
    ready(rig, tree(bell("a", fdt.PropWords("interrupts", 0, 8)),
                    bell("b", fdt.PropWords("interrupts", 0, 8, 2)),
                    bell("c", fdt.PropWords("interrupts", 7, 8, 1))))  # fmt: skip
    assert [c[2] for c in rig.hyp.named("doorbell_create")] == [960, 961, 962]


def test_the_vms_own_virqs_run_out_at_1019() -> None:
    many = [bell(f"b{i}") for i in range(1020 - 960)]
    rig = Rig()
    ready(rig, tree(*many))
    assert rig.hyp.named("doorbell_create")[-1][2] == 1019
    assert init_error(tree(*many, bell("one-more"))) == E["NORESOURCE"]


def test_the_parsers_checks() -> None:
    assert init_error(tree(bell(peer_default=False))) == E["MEM_INVALID"]  # no peer
    push = [f"v,{i}" for i in range(7)]
    assert (
        init_error(tree(bell("b", fdt.PropStrings("push-compatible", *push)))) == (E["MEM_INVALID"])
    )
    assert init_error(tree(bell("b", fdt.PropStrings("push-compatible", *push[:6])))) == 0
    # qcom,label first; one of the wrong size gives way to label; neither: 0
    for props, label in (([fdt.PropWords("qcom,label", 1), fdt.PropWords("label", 2)], 1),
                         ([fdt.PropWords("qcom,label", 1, 1), fdt.PropWords("label", 2)], 2),
                         ([], 0)):  # fmt: skip
        rig = Rig()
        ready(rig, tree(bell("b", *props)))
        assert resources(rig)[1]["label"] == label


def test_source_can_clear_gives_the_owner_the_receive_right_too() -> None:
    rig = Rig()
    ready(rig, tree(bell("b", fdt.Property("source-can-clear"))))
    assert rig.hyp.named("doorbell_create") == [("doorbell_create", VMID, 960, 3, 3)]


def test_a_named_peer_is_not_found_and_the_owner_gets_nothing() -> None:
    rig = Rig()
    ready(rig, tree(bell("b", fdt.PropStrings("peer", "vm-x"), peer_default=False)))
    assert rig.hyp.named("doorbell_create") == [("doorbell_create", VMID, 960, None, 1)]
    assert [e["resource_type"] for e in resources(rig)] == [4]


def test_a_doorbell_source_is_read_but_not_made() -> None:
    rig = Rig()
    ready(rig, tree(bell("b", kind="doorbell-source")))
    assert rig.hyp.named("doorbell_create") == []
    assert (
        init_error(tree(bell("b", kind="doorbell-source", peer_default=False)))
        == (E["MEM_INVALID"])
    )


def test_the_node_goes_where_generate_says() -> None:
    rig = Rig()
    ready(rig, tree(bell("b", fdt.PropStrings("generate", "/soc/bells/bell"))))
    assert vc.find(started_tree(rig), "/soc/bells/bell@0") is not None
    rig = Rig()  # "/": a node named by the cap alone, at the root
    ready(rig, tree(bell("b", fdt.PropStrings("generate", "/"))))
    assert vc.find(started_tree(rig), "/@0") is not None
    for path in ("soc/bell", "/soc//bell"):  # the real RM asserts on these
        rig = Rig()
        ready(rig, tree(bell("b", fdt.PropStrings("generate", path))))
        assert rig.send("VM_START", vmid_word())[-2:] == [
            status(2, 8), (rm.TYPE_REPLY, rig.seq, ID["VM_START"],
                           struct.pack("<I", E["NORESOURCE"]))]  # fmt: skip


def test_a_reset_forgets_the_doorbells() -> None:
    rig = Rig()
    ready(rig, tree(bell("b")))
    rig.send("VM_RESET", vmid_word())
    assert rig.vm().bells == [] and rig.vm().virqs == set()


@given(st.binary(min_size=0, max_size=16))
def test_any_interrupts_property_is_read_or_ignored(value: bytes) -> None:
    node = fdt.Node("b")
    node.append(fdt.PropBytes("interrupts", data=value))
    irq = vc.read_interrupt(node)
    if irq is None:
        return
    assert len(value) == 12
    kind = int.from_bytes(value[:4], "big")
    first, end, local = vc.IRQ_CLASSES[kind]
    assert irq.irq < end and irq.cpu_local == local
    assert irq.irq == (int.from_bytes(value[4:8], "big") + first) & 0xFFFFFFFF


def test_an_interrupt_number_wraps_as_the_rms_u32_does() -> None:
    node = fdt.Node("b")
    node.append(fdt.PropWords("interrupts", 0, 0xFFFFFFF0, 1))  # + 32 wraps to 16
    assert vc.read_interrupt(node) == vc.Interrupt(16, False, True)
    assert (
        init_error(tree(bell("b", fdt.PropWords("interrupts", 0, 0xFFFFFFF0, 1))))
        == (E["NORESOURCE"])
    )


DOORBELL_PROPS = ("vdevice-type", "peer-default", "peer", "label", "qcom,label", "interrupts",
                  "push-compatible", "generate", "source-can-clear")  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.sampled_from(DOORBELL_PROPS), st.binary(max_size=24)),
       st.booleans())  # fmt: skip
def test_any_doorbell_node_is_made_or_refused_and_never_raises(
    props: dict[str, bytes], is_doorbell: bool
) -> None:
    """Hostile vdevice properties: VM_INIT answers OK, MEM_INVALID (the
    parser refused the node) or NORESOURCE (no virq or doorbell for it), and
    a VM that initialised starts or answers NORESOURCE (a `generate` that
    is no path), each doorbell made giving the owner one entry."""
    node = fdt.Node("b")
    if is_doorbell:
        props = {**props, "vdevice-type": b"doorbell\0"}
    for name, value in props.items():
        node.append(fdt.PropBytes(name, data=value) if value else fdt.Property(name))
    rig = Rig()
    rig.ask("VM_ALLOCATE", bytes(4))
    share(rig)
    rig.place(tree(node))
    rig.send("VM_CONFIG_IMAGE", config_image())
    error = int.from_bytes(rig.send("VM_INIT", vmid_word())[-1][3][:4], "little")
    assert error in (0, E["MEM_INVALID"], E["NORESOURCE"])
    if error:
        return
    made = rig.hyp.named("doorbell_create")
    owners = [c for c in made if c[3] is not None]
    assert [e["resource_type"] for e in resources(rig)] == [4] + [0] * len(owners)
    started = int.from_bytes(rig.send("VM_START", vmid_word())[-1][3][:4], "little")
    assert started in (0, E["NORESOURCE"])
