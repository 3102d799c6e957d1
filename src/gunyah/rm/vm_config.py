"""A secondary VM's device tree as the resource manager reads it at VM_INIT
and rewrites it at VM_START (quic/gunyah-resource-manager bf31a9a:
src/vm_config/dtb_parser.c, src/vm_config/vm_config_parser.c,
platform/qemu/src/vm_dt.c, platform/qemu/src/vgic.c,
src/vm_creation/vm_creation.c create_dtbo and create_dt_nodes).

The tree is the VM owner's input: it is read in one bounded, linear walk of
its structure block (no recursion; at most MAX_DT_SIZE bytes, MAX_NODES
nodes, MAX_PROPS properties, the parser's own depth and path limits) into
the `fdt` library's tree with every property's bytes kept as they came;
everything after that reads the tree. A tree refused is `None`, never an
exception.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

import fdt

MAX_DT_SIZE = 1 << 20  # the most of a VM's DT region the RM reads (this RM's bound)
MAX_NODES = 4096
MAX_PROPS = 32768
MAX_DEPTH = 16  # dtb_parser.c MAX_DEPTH: the parser's context stack
MAX_PATH_LEN = 256  # dtb_parser.c MAX_PATH_LEN, with the NUL
MAX_CPU_PATH = 128  # parse_vcpus: the path buffer of a cpu node, with the NUL
VM_MAX_NAME_LEN = 80  # include/rm_types.h, with the NUL
MAX_CORES = 8  # rm_get_platform_max_cores: the QEMU build's usable cores (-smp 8)

FDT_MAGIC = 0xD00DFEED
FDT_HEADER = struct.Struct(">10I")
FDT_BEGIN_NODE, FDT_END_NODE, FDT_PROP, FDT_NOP, FDT_END = 1, 2, 3, 4, 9
PAGE = 0x1000
DEFAULT_BASE = 0x28800000  # config/platform/qemu.conf PLATFORM_SVM_IPA_BASE
DEFAULT_SIZE_MAX = 0x07FFFFFF  # PLATFORM_SVM_IPA_SIZE
DEFAULT_ADDR_CELLS, DEFAULT_SIZE_CELLS = 2, 1  # dtb_parser.c
INVALID = 0xFFFFFFFF  # vgic_phandle ~0U: no GIC found

# The vGIC the RM gives a VM whose GIC node has no `reg` (platform/qemu/src/
# vgic.c, addresses as measured: docs/real-gunyah.md, a second VM's tree)
GICD_BASE, GICD_SIZE = 0x40010000, 0x10000
GICR_BASE, GICR_SIZE = 0x40020000, 0x20000  # one GICv3 redistributor, no VLPIs
VMMIO_BASE, VMMIO_SIZE = 0, 0x40000000  # the owner sees accesses here as vcpu_run exits

CONFIG_PATH = re.compile(r"^/(qcom,|gunyah-)vm-config$")
AFFINITIES = ("sticky", "pinned", "static", "proxy")
# the vdevice-type values vm_config_parser.c's listeners claim, in its table's order
VDEVICE_TYPES = ("rm-rpc", "shm-doorbell", "shm", "doorbell-source", "doorbell",
                 "message-queue", "message-queue-pair", "virtio-mmio", "iomem",
                 "vsmmu-v2", "vrtc-pl031")  # fmt: skip
MAX_PUSH_COMPATIBLES = 6  # include/vm_config.h VDEVICE_MAX_PUSH_COMPATIBLES
# include/dt_linux.h: an `interrupts` triple's class and trigger
DT_GIC_SPI, DT_GIC_PPI, DT_GIC_ESPI, DT_GIC_EPPI = 0, 1, 2, 3
DT_GIC_IRQ_TYPE_EDGE_RISING, DT_GIC_IRQ_TYPE_LEVEL_HIGH = 1, 4
# read_interrupts_config: each class's first interrupt ID, its end, and whether it is a CPU's own
IRQ_CLASSES = {DT_GIC_SPI: (32, 1020, False), DT_GIC_PPI: (16, 32, True),
               DT_GIC_ESPI: (4096, 5120, False), DT_GIC_EPPI: (1056, 1120, True)}  # fmt: skip
DOORBELL_GENERATE = "/hypervisor/qcom,doorbell"  # vm_config.c: where the node goes by default
DOORBELL_COMPATIBLE = ("qcom,gunyah-doorbell", "qcom,gunyah-capability")  # dto_construct.c


# -- reading the blob, bounded ------------------------------------------------------
def total_size(region: bytes) -> int | None:
    """fdt_check_header, and the size the header claims (None if it is no
    header libfdt accepts or claims more than the region holds)."""
    if len(region) < FDT_HEADER.size:
        return None
    magic, total, off_struct, off_strings, off_rsv, version, last_comp, _, size_str, size_struct = (
        FDT_HEADER.unpack_from(region))  # fmt: skip
    if magic != FDT_MAGIC or version < 16 or last_comp > 17:
        return None
    if total < FDT_HEADER.size or total > len(region):
        return None
    if not (FDT_HEADER.size <= off_rsv <= total and off_struct + size_struct <= total
            and off_strings + size_str <= total and off_struct >= FDT_HEADER.size):  # fmt: skip
        return None
    return int(total)


def _cstr(data: bytes, at: int, end: int) -> str | None:
    nul = data.find(b"\0", at, end)
    if nul < 0:
        return None
    try:
        return data[at:nul].decode("ascii")
    except UnicodeDecodeError:
        return None  # the fdt library writes names as ASCII


@dataclass
class Tree:
    """The tree read, with each node's path and depth in the order libfdt's
    fdt_next_node visits them (the order the RM's parser calls its listeners)."""

    fdt: fdt.FDT
    order: list[tuple[fdt.Node, str, int]]


def load(blob: bytes) -> Tree | None:
    """The tree a DT blob holds, read in one linear walk of its structure
    block; None for anything libfdt or this RM's bounds refuse."""
    total = total_size(blob)
    if total is None or total > MAX_DT_SIZE:
        return None
    _, _, off_struct, off_strings, _, _, _, _, size_str, size_struct = FDT_HEADER.unpack_from(blob)
    end, at = off_struct + size_struct, off_struct
    strings_end = off_strings + size_str
    stack: list[fdt.Node] = []
    paths: list[str] = []
    names: list[set[str]] = []  # the names of each open node's children and properties
    pnames: list[set[str]] = []
    order: list[tuple[fdt.Node, str, int]] = []
    root: fdt.Node | None = None
    props = 0
    try:
        while True:
            if at + 4 > end:
                return None
            (tag,) = struct.unpack_from(">I", blob, at)
            at += 4
            if tag == FDT_BEGIN_NODE:
                name = _cstr(blob, at, end)
                if name is None or len(order) >= MAX_NODES or len(stack) >= MAX_DEPTH:
                    return None
                at = (at + len(name) + 4) & ~3
                if not stack:
                    if root is not None:
                        return None  # one root (whatever its name, its path is /)
                    node = root = fdt.Node("/")
                    path = "/"
                else:
                    node = fdt.Node(name)
                    if name in names[-1]:
                        return None  # two nodes of one name: the library cannot hold them
                    names[-1].add(name)
                    node.set_parent(stack[-1])
                    stack[-1].nodes.append(node)  # the library's append searches: linear here
                    path = paths[-1].rstrip("/") + "/" + name
                if len(path) >= MAX_PATH_LEN:
                    return None
                order.append((node, path, len(stack)))
                stack.append(node)
                paths.append(path)
                names.append(set())
                pnames.append(set())
            elif tag == FDT_END_NODE:
                if not stack:
                    return None
                stack.pop()
                paths.pop()
                names.pop()
                pnames.pop()
            elif tag == FDT_PROP:
                if not stack or at + 8 > end:
                    return None
                size, name_at = struct.unpack_from(">II", blob, at)
                if at + 8 + size > end or off_strings + name_at >= strings_end:
                    return None
                pname = _cstr(blob, off_strings + name_at, strings_end)
                props += 1
                if pname is None or props > MAX_PROPS:
                    return None
                at_next = (at + 8 + size + 3) & ~3
                if stack[-1].nodes:  # after a subnode: libfdt's property walk never sees it
                    at = at_next
                    continue
                if pname in pnames[-1]:
                    return None  # two of one name: the library cannot hold them
                pnames[-1].add(pname)
                value = blob[at + 8 : at + 8 + size]
                prop = fdt.PropBytes(pname, data=value) if value else fdt.Property(pname)
                prop.set_parent(stack[-1])
                stack[-1].props.append(prop)
                at = at_next
            elif tag == FDT_NOP:
                continue
            elif tag == FDT_END:
                break
            else:
                return None
    except Exception:  # nothing above should raise; a tree the library refuses is refused
        return None
    if root is None or stack:
        return None
    tree = fdt.FDT(entries=[])  # its own reserve map: the library's default list is shared
    tree.root = root
    return Tree(tree, order)


# -- reading properties as libfdt does ------------------------------------------------
def raw(node: fdt.Node, name: str) -> bytes | None:
    """A property's bytes as the blob held them; None when absent."""
    p = node.get_property(name)
    return None if p is None else value_of(p)


def value_of(p: fdt.Property) -> bytes:
    """A property's bytes, whichever of the library's classes holds it."""
    if isinstance(p, fdt.PropBytes):
        return bytes(p.data)
    if isinstance(p, fdt.PropWords):  # made by the library's own classes, not by `load`
        return b"".join(w.to_bytes(4, "big") for w in p.data)
    if isinstance(p, fdt.PropStrings):
        return b"".join(v.encode() + b"\0" for v in p.data)
    return b""


def string(node: fdt.Node, name: str, index: int = 0) -> str | None:
    """fdt_stringlist_get: the index'th string, when it and those before it
    end in a NUL within the property; else None."""
    value = raw(node, name)
    if value is None:
        return None
    at = 0
    for i in range(index + 1):
        nul = value.find(b"\0", at)
        if nul < 0:
            return None
        if i == index:
            return value[at:nul].decode("latin-1")
        at = nul + 1
    return None


def strings(node: fdt.Node, name: str) -> list[str] | None:
    """Every string of a string list; None where it is absent or malformed."""
    value = raw(node, name)
    if value is None or not value or value[-1] != 0:
        return None
    return [s.decode("latin-1") for s in value[:-1].split(b"\0")]


def u32(node: fdt.Node, name: str) -> int | None:
    """fdt_getprop_u32: exactly one cell, else None."""
    value = raw(node, name)
    return int.from_bytes(value, "big") if value is not None and len(value) == 4 else None


def s32(node: fdt.Node, name: str) -> int | None:
    value = u32(node, name)
    return None if value is None else value - (1 << 32) * (value >> 31)


def number(node: fdt.Node, name: str, cells: int) -> int | None:
    """fdt_getprop_num: one or two cells, exactly, else None."""
    value = raw(node, name)
    if value is None or cells not in (1, 2) or len(value) != 4 * cells:
        return None
    return int.from_bytes(value, "big")


def compatible(node: fdt.Node, name: str) -> bool:
    """fdt_node_check_compatible == 0."""
    value = raw(node, "compatible")
    return value is not None and name.encode() in value.split(b"\0")


def _name_matches(node_name: str, want: str) -> bool:
    """libfdt: a path component without a unit address names the node with one."""
    return node_name == want or ("@" not in want and node_name.split("@", 1)[0] == want)


def find(tree: Tree, path: str) -> fdt.Node | None:
    """fdt_path_offset for an absolute path."""
    if not path.startswith("/"):
        return None
    node = tree.fdt.root
    for part in (p for p in path.split("/") if p):
        node = next((n for n in node.nodes if _name_matches(n.name, part)), None)
        if node is None:
            return None
    return node


def by_phandle(tree: Tree, phandle: int) -> fdt.Node | None:
    if phandle in (0, INVALID):
        return None
    for node, _, _ in tree.order:
        if u32(node, "phandle") == phandle or u32(node, "linux,phandle") == phandle:
            return node
    return None


def phandle_of(node: fdt.Node) -> int:
    return u32(node, "phandle") or u32(node, "linux,phandle") or 0


# -- the parser's listeners (vm_config_parser.c, platform/qemu/src/vm_dt.c) -----------
@dataclass
class Cells:
    """dtb_parser.c ctx_t: the cells of a node's own reg, and its children's."""

    addr: int = DEFAULT_ADDR_CELLS
    size: int = DEFAULT_SIZE_CELLS
    child_addr: int = DEFAULT_ADDR_CELLS
    child_size: int = DEFAULT_SIZE_CELLS


@dataclass
class Cpu:
    path: str
    boot: bool


@dataclass
class VmConfig:
    """What VM_INIT takes from the tree (vm_config_parser_data_t, the parts
    this RM acts on)."""

    image_name: str = ""
    vendor: str | None = None
    uri: str = ""
    guid: bytes | None = None
    base: int = DEFAULT_BASE
    size_min: int = 0
    size_max: int = DEFAULT_SIZE_MAX
    is_direct: bool = False
    affinity: str = "static"
    affinity_map: list[int] = field(default_factory=list)
    sched_priority: int = 0
    sched_timeslice: int = 0  # microseconds
    cpus: list[Cpu] = field(default_factory=list)
    psci: bool = False
    crash_fatal: bool = False
    no_shutdown: bool = False
    no_reset: bool = False
    vgic_phandle: int = 0
    vgic_cells: tuple[int, int] = (DEFAULT_ADDR_CELLS, DEFAULT_SIZE_CELLS)
    gicd: int | None = None  # from the GIC's reg; None: the RM picks and patches
    gicr: int | None = None
    gicr_stride: int = 0
    doorbells: list[DoorbellConfig] = field(default_factory=list)


@dataclass(frozen=True)
class Interrupt:
    """interrupt_data_t: an interrupt ID, whether it is a CPU's own, its trigger."""

    irq: int
    cpu_local: bool
    edge: bool


@dataclass(frozen=True)
class DoorbellConfig:
    """A `doorbell` or `doorbell-source` vdevice node (doorbell_data_t)."""

    source: bool  # doorbell-source: the VM rings it; doorbell: the VM is rung
    peer_default: bool  # its peer is the VM's owner; else `peer` names one
    peer_id: str | None
    source_can_clear: bool
    label: int
    irq: Interrupt | None  # `interrupts` as read_interrupts_config took it; None: the RM picks
    generate: str | None
    push_compatible: tuple[str, ...]


class Refused(Exception):
    """The parser's RET_ERROR: the tree is refused (VM_INIT answers MEM_INVALID)."""


def _cells_of(tree: Tree) -> Iterator[tuple[fdt.Node, str, int, Cells]]:
    """Each node in walk order with its address context (push_ctx)."""
    stack: list[Cells] = []
    for node, path, depth in tree.order:
        del stack[depth:]
        parent = stack[-1] if stack else None
        c = Cells()
        if parent is not None:
            c.addr, c.size = parent.child_addr, parent.child_size
        a, s = u32(node, "#address-cells"), u32(node, "#size-cells")
        c.child_addr = DEFAULT_ADDR_CELLS if a is None else a
        c.child_size = DEFAULT_SIZE_CELLS if s is None else s
        stack.append(c)
        yield node, path, depth, c


def _ctx_of(tree: Tree, target: fdt.Node) -> Cells:
    for node, _, _, c in _cells_of(tree):
        if node is target:
            return c
    return Cells()


def parse(tree: Tree) -> VmConfig | None:
    """The tree as dtb_parser_parse_dtb reads it with the VM config's
    listeners; None where the parser refuses it."""
    cfg = parse_or_why(tree)
    return cfg if isinstance(cfg, VmConfig) else None


def parse_or_why(tree: Tree) -> VmConfig | str:
    """`parse`, with what the parser refused the tree for in words where it did."""
    cfg = VmConfig()
    try:
        for node, path, depth, ctx in _cells_of(tree):
            _listen(tree, cfg, node, path, depth, ctx)
    except Refused as e:
        return str(e)
    return cfg


def _listen(tree: Tree, cfg: VmConfig, node: fdt.Node, path: str, depth: int,
            ctx: Cells) -> None:  # fmt: skip
    """check_listeners: the first listener that matches and does not
    continue ends the node's turn, in the table's order."""
    device_type = strings(node, "device_type") or []
    if "memory" in device_type:
        # the first listener, so that no memory node passes disguised: only
        # /memory itself, which the RM replaces, is allowed
        if not (node.name == "memory" and depth == 1):
            raise Refused(f"{path} is a memory node other than /memory")
        return
    if CONFIG_PATH.match(path):
        _vm_config(cfg, node)
        return
    if re.match(r"^/(qcom,|gunyah-)vm-config/memory$", path):
        _vm_memory(cfg, node, ctx)
        return
    if re.match(r"^/(qcom,|gunyah-)vm-config/vcpus$", path):
        _vcpus(tree, cfg, node)
        return
    types = strings(node, "vdevice-type") or ()
    claimed = next((t for t in VDEVICE_TYPES if t in types), None)
    if claimed in ("doorbell", "doorbell-source"):
        cfg.doorbells.append(_doorbell(node, claimed == "doorbell-source"))
        return
    if claimed is not None:
        return  # the parser claims them; this RM makes none of these devices
    if compatible(node, "arm,psci-0.2") or compatible(node, "arm,psci-1.0"):
        cfg.psci = True
        return
    if re.match(r"^/(qcom,|gunyah-)vm-config/interrupts$", path):
        _interrupts(tree, cfg, node)
        return
    if path == "/":
        cfg.vgic_phandle = INVALID
        phandle = u32(node, "interrupt-parent")
        if phandle is not None:
            _gic(tree, cfg, phandle)  # a failure waits for the vm-config's interrupts


def read_interrupt(node: fdt.Node) -> Interrupt | None:
    """read_interrupts_config for one interrupt: exactly three cells, a
    class it knows, an ID below the class's end (the sum taken in 32 bits,
    as virq_t is), edge rising or level high; else None (none defined)."""
    value = raw(node, "interrupts")
    if value is None or len(value) != 12:
        return None
    kind, number, flags = struct.unpack(">3I", value)
    if kind not in IRQ_CLASSES:
        return None
    first, end, local = IRQ_CLASSES[kind]
    irq = (number + first) & 0xFFFFFFFF
    trigger = flags & 0xF
    if irq >= end or trigger not in (DT_GIC_IRQ_TYPE_EDGE_RISING, DT_GIC_IRQ_TYPE_LEVEL_HIGH):
        return None
    return Interrupt(irq, local, trigger == DT_GIC_IRQ_TYPE_EDGE_RISING)


def _doorbell(node: fdt.Node, source: bool) -> DoorbellConfig:
    """parse_doorbell and parse_doorbell_source: a peer (peer-default or a
    `peer` string) or the tree is refused; a source defines no interrupt;
    then the general vdevice properties (parse_general_vdevice_props: the
    label from qcom,label else label, 0 without; generate; at most six
    push-compatible strings, more is refused)."""
    peer_default = raw(node, "peer-default") is not None
    peer_id = None if peer_default else string(node, "peer")
    if not peer_default and peer_id is None:
        raise Refused("a doorbell without peer-default or peer")
    label = u32(node, "qcom,label")
    if label is None:
        label = u32(node, "label")
    push = strings(node, "push-compatible") or []
    if len(push) > MAX_PUSH_COMPATIBLES:
        raise Refused("more push-compatible strings than a vdevice takes")
    return DoorbellConfig(
        source=source, peer_default=peer_default, peer_id=peer_id,
        source_can_clear=raw(node, "source-can-clear") is not None,
        label=label or 0, irq=None if source else read_interrupt(node),
        generate=string(node, "generate"), push_compatible=tuple(push))  # fmt: skip


def _vm_config(cfg: VmConfig, node: fdt.Node) -> None:
    raw_attrs = raw(node, "vm-attrs")
    attrs = strings(node, "vm-attrs")
    if raw_attrs is not None and raw_attrs and attrs is None:
        raise Refused("vm-attrs")  # a malformed string list
    for attr in attrs or []:
        if attr == "crash-fatal":
            cfg.crash_fatal = cfg.no_shutdown = cfg.no_reset = True
        elif attr == "no-shutdown":
            cfg.no_shutdown = True
        elif attr == "no-reset":
            cfg.no_reset = True
    cfg.vendor = string(node, "vendor")
    name = string(node, "image-name")
    if name is None or len(name) >= VM_MAX_NAME_LEN:
        raise Refused("image-name missing or too long")
    cfg.image_name = name
    uri = string(node, "vm-uri")
    if uri is not None and len(uri) < 80:
        cfg.uri = uri
    guid = string(node, "vm-guid")
    if guid is not None:
        groups = _guid_groups(guid)
        if groups is None:
            raise Refused("vm-guid")
        cfg.guid = b"".join(g.to_bytes(2, "big") for g in groups)


def _guid_groups(text: str) -> list[int] | None:
    """sscanf "%04x%04x-%04x-%04x-%04x-%04x%04x%04x": eight hex groups of
    at most four digits each."""
    m = re.match(r"^\s*([0-9a-fA-F]{1,4})([0-9a-fA-F]{1,4})-([0-9a-fA-F]{1,4})-"
                 r"([0-9a-fA-F]{1,4})-([0-9a-fA-F]{1,4})-([0-9a-fA-F]{1,4})"
                 r"([0-9a-fA-F]{1,4})([0-9a-fA-F]{1,4})", text)  # fmt: skip
    return None if m is None else [int(g, 16) for g in m.groups()]


def _vm_memory(cfg: VmConfig, node: fdt.Node, ctx: Cells) -> None:
    if raw(node, "is-direct") is not None:
        cfg.is_direct = True
        cfg.size_max = (1 << 64) - 1
    base = number(node, "base-address", ctx.addr)
    if base is not None:
        if base % PAGE:
            raise Refused("base-address alignment")
        cfg.base = -(-base // (2 << 20)) * (2 << 20) & ((1 << 64) - 1)  # aligned up to 2 MiB
        cfg.size_max = -cfg.base & ((1 << 64) - 1)  # the address space above the base
    size_min = number(node, "size-min", ctx.size)
    if size_min is not None:
        if size_min % PAGE:
            raise Refused("size-min alignment")
        cfg.size_min = size_min
    size_max = number(node, "size-max", ctx.size)
    if size_max is not None:
        if size_max % PAGE or cfg.base + size_max > (1 << 64) - 1:
            raise Refused("size-max")
        cfg.size_max = size_max


def _vcpus(tree: Tree, cfg: VmConfig, node: fdt.Node) -> None:
    affinity = string(node, "affinity")
    cfg.affinity = affinity if affinity in AFFINITIES else "static"
    if cfg.affinity != "proxy":
        cfg.sched_timeslice = u32(node, "sched-timeslice") or cfg.sched_timeslice
        priority = s32(node, "sched-priority")
        cfg.sched_priority = cfg.sched_priority if priority is None else priority
        amap = raw(node, "affinity-map")
        if amap is None:
            raise Refused("affinity-map missing")
        cfg.affinity_map = [int.from_bytes(amap[i : i + 4], "big")
                            for i in range(0, len(amap) - 3, 4)]  # fmt: skip
    config = string(node, "config") or "/cpus"
    cpus = find(tree, config)
    if cpus is None:
        raise Refused("vcpus config path")
    default_method = string(cpus, "enable-method")
    cpus_path = next(p for n, p, _ in tree.order if n is cpus)
    enabled = psci = idle = 0
    count = 0
    for cpu in cpus.nodes:
        if string(cpu, "device_type") != "cpu":
            continue
        status = string(cpu, "status")
        if status is None:
            boot = enabled == 0
        elif status == "okay":
            boot = True
        elif status == "disabled":
            boot = False
        elif status == "fail" or status.startswith("fail-"):
            continue
        else:
            raise Refused("cpu status")
        method = string(cpu, "enable-method") or default_method
        if raw(cpu, "cpu-idle-states") is not None:
            idle += 1
        if boot:
            enabled += 1
        elif method is None:
            raise Refused("secondary vCPUs need an enable-method")
        elif method == "psci":
            psci += 1
        elif method != "qcom,gunyah-hvc":
            raise Refused("enable-method")
        path = cpus_path.rstrip("/") + "/" + cpu.name
        if len(path) >= MAX_CPU_PATH:
            raise Refused("cpu path")
        cfg.cpus.append(Cpu(path, boot))
        count += 1
    if enabled == 0:
        raise Refused("no vCPU enabled at boot")
    if cfg.affinity != "proxy" and len(cfg.cpus) != len(cfg.affinity_map):
        raise Refused("cpu and affinity counts differ")
    if psci or idle:
        cfg.psci = True
    if cfg.psci and cfg.affinity != "proxy" and idle != len(cfg.cpus):
        raise Refused("PSCI for a non-proxy VM needs idle states on every CPU")


def _interrupts(tree: Tree, cfg: VmConfig, node: fdt.Node) -> None:
    """platform_parse_interrupts: the GIC by `config` (a path), else the
    root's interrupt-parent found before."""
    value = raw(node, "config")
    path = string(node, "config")
    if path is not None and len(path) > 1 and path.startswith("/"):
        gic = find(tree, path)
        if gic is None:
            raise Refused("interrupts config path")
        phandle = phandle_of(gic)
    elif value is None and cfg.vgic_phandle != INVALID:
        return
    elif u32(node, "config") is not None:
        phandle = u32(node, "config") or 0  # a phandle where a path belongs: accepted
    else:
        raise Refused("interrupts config")
    if phandle != cfg.vgic_phandle and not _gic(tree, cfg, phandle):
        raise Refused("GIC node")


def _gic(tree: Tree, cfg: VmConfig, phandle: int) -> bool:
    """platform_parse_gic: a GICv3 the RM can emulate, or False."""
    ok = _gic_ok(tree, cfg, phandle)
    if ok:
        cfg.vgic_phandle = phandle
    else:
        cfg.gicr_stride, cfg.vgic_phandle = 0, INVALID
    return ok


def _gic_ok(tree: Tree, cfg: VmConfig, phandle: int) -> bool:
    node = by_phandle(tree, phandle)
    if node is None or not compatible(node, "arm,gic-v3"):
        return False
    if raw(node, "interrupt-controller") is None:
        return False
    regions = u32(node, "#redistributor-regions")
    if regions is not None and regions != 1:
        return False
    if u32(node, "#interrupt-cells") != 3:
        return False
    ctx = _ctx_of(tree, node)
    if ctx.addr not in (1, 2) or ctx.size not in (0, 1, 2):
        return False
    cfg.vgic_cells = (ctx.addr, ctx.size)
    reg = raw(node, "reg")
    cells = ctx.addr + ctx.size
    if reg is None:
        cfg.gicd = cfg.gicr = None
    elif len(reg) >= 4 * 2 * cells:
        cfg.gicd = int.from_bytes(reg[: 4 * ctx.addr], "big")
        cfg.gicr = int.from_bytes(reg[4 * cells : 4 * (cells + ctx.addr)], "big")
    else:
        return False
    stride = raw(node, "redistributor-stride")
    if stride is not None and len(stride) == 8:
        value = int.from_bytes(stride, "big")
        if value < GICR_SIZE or value % 0x10000:
            return False
        cfg.gicr_stride = value
    else:
        cfg.gicr_stride = GICR_SIZE
    return True


# -- the rewrite at VM_START (create_dtbo, applied as an overlay) ----------------------
@dataclass(frozen=True)
class DoorbellNode:
    """A doorbell the VM receives, as dto_create_doorbell writes it: at
    `generate`@<its cap ID in hex>, compatible the node's push-compatible
    strings then DOORBELL_COMPATIBLE, reg the cap ID (two cells), its
    interrupt, qcom,label and label."""

    generate: str
    cap_id: int
    irq: Interrupt
    label: int
    push_compatible: tuple[str, ...] = ()


@dataclass(frozen=True)
class Facts:
    """What the RM writes into the VM's tree."""

    vmid: int
    owner: int
    image_name: str
    memory: tuple[int, int]  # base, size: the image parcel where the VM sees it
    kaslr_seed: bytes  # 8 bytes
    vcpus: int
    doorbells: tuple[DoorbellNode, ...] = ()


def interrupt_cells(irq: Interrupt) -> tuple[int, int, int] | None:
    """dto_property_add_interrupts_array: (class, number, trigger), or None
    for an ID no class holds."""
    for kind, (first, end, local) in IRQ_CLASSES.items():
        if local == irq.cpu_local and first <= irq.irq < end:
            trigger = DT_GIC_IRQ_TYPE_EDGE_RISING if irq.edge else DT_GIC_IRQ_TYPE_LEVEL_HIGH
            return kind, irq.irq - first, trigger
    return None


def _doorbell_node(root: fdt.Node, bell: DoorbellNode) -> bool:
    """dto_create_doorbell into the tree (an overlay: nodes on the way made
    where missing, properties replaced); False for a `generate` that is no
    absolute path of named nodes (the real RM asserts on one)."""
    path = f"{bell.generate}@{bell.cap_id:x}"
    parts = path.split("/")
    cells = interrupt_cells(bell.irq)
    if parts[0] or not all(parts[1:]) or not path.isascii() or cells is None:
        return False
    node = root
    for name in parts[1:]:
        node = subnode(node, name)
    set_property(node, _text("compatible", *bell.push_compatible, *DOORBELL_COMPATIBLE))
    set_property(node, _words("reg", *_cells(bell.cap_id, 2)))
    set_property(node, _words("interrupts", *cells))
    set_property(node, _words("qcom,label", bell.label))
    set_property(node, _words("label", bell.label))
    return True


def _words(name: str, *values: int) -> fdt.Property:
    return fdt.PropBytes(name, data=b"".join(v.to_bytes(4, "big") for v in values))


def _cells(value: int, cells: int) -> list[int]:
    return [(value >> (32 * (cells - 1 - i))) & 0xFFFFFFFF for i in range(cells)]


def _text(name: str, *values: str) -> fdt.Property:
    return fdt.PropBytes(name, data=b"".join(v.encode("latin-1") + b"\0" for v in values))


def set_property(node: fdt.Node, prop: fdt.Property) -> None:
    """`prop` on `node`, in place of one of its name."""
    if node.get_property(prop.name) is not None:
        node.remove_property(prop.name)
    node.append(prop)


def subnode(parent: fdt.Node, name: str) -> fdt.Node:
    """`parent`'s child `name`, made where it has none."""
    node = parent.get_subnode(name)
    if node is None:
        node = fdt.Node(name)
        parent.append(node)
    return node


def rewrite(tree: Tree, cfg: VmConfig, facts: Facts) -> bytes | None:
    """The VM's tree as the RM leaves it (None where create_dtbo or the
    overlay fails: a /hypervisor of the VM's own, no /chosen, no GIC to
    patch, root cells libfdt refuses)."""
    root = tree.fdt.root
    addr_cells = u32(root, "#address-cells")
    size_cells = u32(root, "#size-cells")
    addr_cells = 2 if addr_cells is None else addr_cells
    size_cells = 1 if size_cells is None else size_cells
    if not 1 <= addr_cells <= 2 or not 0 <= size_cells <= 2:
        return None  # fdt_address_cells refuses > 4; the RM's own writer takes <= 2
    if root.get_subnode("hypervisor") is not None:
        return None  # create_dtbo: there must be no /hypervisor already
    chosen = root.get_subnode("chosen")
    if chosen is None:
        return None  # the overlay's fragment for /chosen finds no target
    if cfg.gicd is None and (cfg.vgic_phandle in (0, INVALID) or facts.vcpus == 0):
        return None  # vgic_dto_finalise: making a GIC node is not implemented
    if root.get_subnode("reserved-memory") is None:
        resmem = fdt.Node("reserved-memory")
        resmem.append(_words("#address-cells", addr_cells))
        resmem.append(_words("#size-cells", size_cells))
        resmem.append(fdt.Property("ranges"))
        root.append(resmem)
    set_property(chosen, fdt.PropBytes("kaslr-seed", data=facts.kaslr_seed[:8].ljust(8, b"\0")))
    memory = subnode(root, "memory")
    set_property(memory, _text("device_type", "memory"))
    base, size = facts.memory
    set_property(memory, _words("reg", *_cells(base, addr_cells), *_cells(size, size_cells)))
    if root.get_subnode("vsoc") is None:
        vsoc = fdt.Node("vsoc")
        vsoc.append(_words("#address-cells", 2))
        vsoc.append(_words("#size-cells", 2))
        vsoc.append(fdt.Property("ranges"))
        vsoc.append(_text("compatible", "simple-bus"))
        root.append(vsoc)
    hyp = fdt.Node("hypervisor")
    hyp.append(_words("#address-cells", 2))
    hyp.append(_words("#size-cells", 0))
    hyp.append(_text("compatible", "gunyah-hypervisor", "qcom,gunyah-hypervisor-1.0",
                     "qcom,gunyah-hypervisor", "simple-bus"))  # fmt: skip
    vm = fdt.Node("qcom,gunyah-vm")
    vm.append(_text("compatible", "qcom,gunyah-vm-id-1.0", "qcom,gunyah-vm-id"))
    vm.append(_words("qcom,vmid", facts.vmid))
    vm.append(_words("qcom,owner-vmid", facts.owner))
    vm.append(_text("qcom,vendor", "Qualcomm"))
    vm.append(_text("qcom,image-name", facts.image_name))
    hyp.append(vm)
    root.append(hyp)
    for bell in facts.doorbells:  # create_dt_nodes: the VM's vdevices after the VM's node
        if not _doorbell_node(root, bell):
            return None
    gic = by_phandle(tree, cfg.vgic_phandle) if cfg.gicd is None else None
    if cfg.gicd is None and gic is None:
        return None  # the GIC the parser found is gone from the tree read again
    if gic is not None:
        a, s = cfg.vgic_cells
        set_property(gic, _text("compatible", "arm,gic-v3"))
        set_property(gic, _words("#redistributor-regions", 1))
        stride = cfg.gicr_stride.to_bytes(8, "big")
        set_property(gic, fdt.PropBytes("redistributor-stride", data=stride))
        set_property(
            gic,
            _words(
                "reg",
                *_cells(GICD_BASE, a),
                *_cells(GICD_SIZE, s),
                *_cells(GICR_BASE, a),
                *_cells(cfg.gicr_stride * facts.vcpus, s),
            ),
        )
    return serialize(tree.fdt.root)


def serialize(root: fdt.Node) -> bytes:
    """The tree as a version 17 blob, in one pass: the library's own writer
    searches its string table once a property, which a hostile tree makes
    quadratic. Names are ASCII (as `load` admits them)."""
    strings: dict[str, int] = {}
    table = bytearray()
    out = bytearray()
    work: list[fdt.Node | None] = [root]
    while work:
        node = work.pop()
        if node is None:
            out += struct.pack(">I", FDT_END_NODE)
            continue
        name = b"" if node is root else node.name.encode("ascii")
        out += struct.pack(">I", FDT_BEGIN_NODE) + name + b"\0"
        out += bytes(-len(out) % 4)
        for prop in node.props:
            if prop.name not in strings:
                strings[prop.name] = len(table)
                table += prop.name.encode("ascii") + b"\0"
            value = value_of(prop)
            out += struct.pack(">III", FDT_PROP, len(value), strings[prop.name]) + value
            out += bytes(-len(out) % 4)
        work.append(None)
        work.extend(reversed(node.nodes))
    out += struct.pack(">I", FDT_END)
    rsvmap = bytes(16)
    off_rsv = FDT_HEADER.size
    off_struct = off_rsv + len(rsvmap)
    off_strings = off_struct + len(out)
    total = off_strings + len(table)
    header = FDT_HEADER.pack(FDT_MAGIC, total, off_struct, off_strings, off_rsv, 17, 16, 0,
                             len(table), len(out))  # fmt: skip
    return header + rsvmap + bytes(out) + bytes(table)
