"""Gunyah's native hypercalls, read from their declarations (abi/hvc/*.hvc,
whose README.txt gives the grammar): each call's number, its argument and
result registers with their C types, the reserved arguments, and the
capabilities it looks up. Both dispatch paths, `decode`, the catalogue,
docs/hypercalls.md (abi/reference.py) and the
tests derive from these.

A type's width is what the hypervisor's C wrappers keep of a register: a
32-bit type reads the low 32 bits of its argument register, and `error`
(a signed 32-bit enumeration) comes back zero-extended in the native form
and sign-extended in the SMCCC one.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

from . import cspace
from .identify import FEATURES

# C type -> bits the wrappers keep (hyp/core/base/types.tc and each interface's .tc)
TYPE_BITS: dict[str, int] = {
    "uregister": 64, "register_t": 64, "uint64": 64, "size": 64, "cap_id_t": 64,
    "user_ptr_t": 64, "vmaddr_t": 64, "paddr_t": 64, "nanoseconds_t": 64,
    "uint32": 32, "count_t": 32, "index_t": 32, "virq_t": 32, "cap_rights_t": 32,
    "priority_t": 32, "cpu_index_t": 16, "vmid_t": 16, "bool": 8, "error": 32,
    # enumerations
    "vcpu_virq_type": 32, "vcpu_register_set": 32, "addrspace_vmmio_configure_op": 32,
    "virtio_device_type": 32, "vcpu_run_state": 32,
    # bitfields and unions
    "hyp_api_info": 64, "hyp_api_flags0": 64, "hyp_api_flags1": 64, "hyp_api_flags2": 64,
    "msgqueue_send_flags": 32, "msgqueue_create_info": 64, "vic_option_flags": 64,
    "vcpu_option_flags": 64, "vcpu_poweron_flags": 64, "vcpu_poweroff_flags": 64,
    "scheduler_yield_control": 32, "memextent_mapping_attrs": 32,
    "memextent_access_attrs": 32, "addrspace_map_flags": 32, "memextent_modify_flags": 32,
    "memextent_donate_options": 32, "memextent_attrs": 32, "virtio_option_flags": 64,
    "virtio_mmio_notify_reason": 64, "vpm_group_option_flags": 64,
    "addrspace_attach_vdevice_flags": 64,
}  # fmt: skip
RESERVED = {"res0": 0, "res1": (1 << 64) - 1}  # what a reserved argument must hold


class DeclarationError(ValueError):
    """A declaration file does not follow the grammar."""


@dataclass(frozen=True)
class Input:
    name: str
    ctype: str
    reserved: int | None = None  # the value a res0/res1 argument must hold

    @property
    def mask(self) -> int:
        return (1 << TYPE_BITS[self.ctype]) - 1


@dataclass(frozen=True)
class Output:
    name: str
    ctype: str

    @property
    def mask(self) -> int:
        return (1 << TYPE_BITS[self.ctype]) - 1


@dataclass(frozen=True)
class Lookup:
    """A capability the call looks up: in argument `index`, of `object_type`
    with `rights`; or ("any") any object with these generic rights, then,
    if `object_type` is set, of that type."""

    index: int
    any_object: bool
    object_type: str | None
    rights: int


@dataclass(frozen=True)
class Hypercall:
    number: int
    name: str
    inputs: tuple[Input, ...]
    outputs: tuple[Output, ...]
    lookups: tuple[Lookup, ...]
    feature: str | None = None  # only in builds with this feature

    @property
    def reserved(self) -> tuple[tuple[int, int], ...]:
        """(argument index, required value) of each reserved argument."""
        return tuple((i, a.reserved) for i, a in enumerate(self.inputs) if a.reserved is not None)

    @property
    def checks_reserved(self) -> bool:
        """The native wrapper checks reserved arguments only where the call
        has an error result (c_wrapper.c.tmpl)."""
        return any(o.ctype == "error" for o in self.outputs)

    def signature(self) -> str:
        ins = ", ".join(f"{a.name}" for a in self.inputs)
        outs = ", ".join(o.name for o in self.outputs)
        return f"{self.name}({ins}) -> ({outs})"


def parse(text: str, source: str = "<hvc>") -> list[Hypercall]:
    """The calls a declaration file declares; DeclarationError names the line."""
    calls: list[Hypercall] = []
    current: dict[str, object] | None = None

    def fail(n: int, why: str) -> DeclarationError:
        return DeclarationError(f"{source}:{n}: {why}")

    def finish() -> None:
        if current is not None:
            calls.append(Hypercall(**current))  # type: ignore[arg-type]

    for n, raw in enumerate(text.splitlines(), start=1):
        words = raw.split("#", 1)[0].split()
        if not words:
            continue
        word, rest = words[0], words[1:]
        if word == "call":
            finish()
            if len(rest) != 2:
                raise fail(n, "call NUMBER NAME")
            try:
                number = int(rest[0], 16)
            except ValueError:
                raise fail(n, f"call number {rest[0]!r} is not hex") from None
            current = {"number": number, "name": rest[1], "inputs": (), "outputs": (),
                       "lookups": (), "feature": None}  # fmt: skip
            continue
        if current is None:
            raise fail(n, f"{word!r} outside a call")
        inputs: tuple[Input, ...] = current["inputs"]  # type: ignore[assignment]
        if word == "in":
            if len(rest) == 1 and rest[0] in RESERVED:
                item = Input(rest[0], "uregister", RESERVED[rest[0]])
            elif len(rest) == 2 and rest[1] in TYPE_BITS:
                item = Input(rest[0], rest[1])
            else:
                raise fail(n, f"in NAME TYPE (a type of TYPE_BITS), or in res0/res1: {raw!r}")
            current["inputs"] = (*inputs, item)
        elif word == "out":
            if len(rest) != 2 or rest[1] not in TYPE_BITS:
                raise fail(n, f"out NAME TYPE (a type of TYPE_BITS): {raw!r}")
            current["outputs"] = (*current["outputs"], Output(rest[0], rest[1]))  # type: ignore[misc]
        elif word == "lookup":
            current["lookups"] = (*current["lookups"], _lookup(rest, inputs, fail, n))  # type: ignore[misc]
        elif word == "feature" and len(rest) == 1:
            if rest[0] not in FEATURES:
                raise fail(n, f"feature {rest[0]!r} is not one of API flags 0's: {FEATURES}")
            current["feature"] = rest[0]
        else:
            raise fail(n, f"unknown statement {word!r}")
    finish()
    for call in calls:
        if len(call.inputs) > 8 or len(call.outputs) > 8:
            raise DeclarationError(f"{source}: {call.name}: at most 8 arguments and 8 results")
    return calls


def _lookup(rest: list[str], inputs: tuple[Input, ...], fail, n: int) -> Lookup:  # type: ignore[no-untyped-def]
    names = [a.name for a in inputs]
    if len(rest) < 3 or rest[0] not in names:
        raise fail(n, "lookup INPUT TYPE RIGHTS, INPUT an argument declared before it")
    index = names.index(rest[0])
    if inputs[index].ctype != "cap_id_t":
        raise fail(n, f"{rest[0]} is not a capability")
    try:
        if rest[1] == "any":
            object_type = rest[3] if len(rest) == 4 else None
            if object_type is not None and object_type not in cspace.OBJECT_TYPES:
                raise KeyError(object_type)
            rights = cspace.rights_mask("any", tuple(rest[2].split(",")))
            return Lookup(index, True, object_type, rights)
        if rest[1] not in cspace.OBJECT_TYPES or len(rest) != 3:
            raise KeyError(rest[1])
        return Lookup(index, False, rest[1], cspace.rights_mask(rest[1], tuple(rest[2].split(","))))
    except KeyError as e:
        raise fail(n, f"unknown object type or right {e}") from None


def _load() -> dict[int, Hypercall]:
    table: dict[int, Hypercall] = {}
    for entry in sorted(resources.files("gunyah").joinpath("abi/hvc").iterdir(), key=str):
        if not entry.name.endswith(".hvc"):
            continue
        for call in parse(entry.read_text("ascii"), f"abi/hvc/{entry.name}"):
            if call.number in table:
                raise DeclarationError(f"call {call.number:#x} is declared twice")
            table[call.number] = call
    return dict(sorted(table.items()))


DECLARED: dict[int, Hypercall] = _load()
"""Every native hypercall, by number."""
BY_NAME: dict[str, Hypercall] = {c.name: c for c in DECLARED.values()}
TABLE_SIZE = max(DECLARED) + 1  # entries of the hypervisor's native table (0x00..0x68)

