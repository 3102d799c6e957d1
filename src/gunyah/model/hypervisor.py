"""An executable model of the hypervisor side of the identification ABI.

It answers a trapped HVC/SMC the way the Gunyah hypervisor's dispatcher does
(quic/gunyah-hypervisor: hyp/vm/smccc/aarch64/src/smccc_64.c,
src/smccc_hypercalls.c, src/smccc.c, templates/hyp_wrapper.c.tmpl), down to
which registers it writes and at which width:

* imm 0 is SMCCC. X0's low 32 bits are the function ID. Bits 23:17 set:
  X0 = -1 (64-bit) and nothing else.
* The call goes to the one service of the persona's list that registered
  its owner and function number (model.services: arch, std-hyp,
  vendor-hyp, psci, trng, kvm); each writes its registers in its
  hypervisor's convention (services.calling).
* Anything unhandled: X0 = -1 in the full 64 bits, other registers untouched
  (KVM's way: X0..X3 = -1, 0, 0, 0).
* `hvc #0x6000+N` is native call N, arguments and results from X0 (the
  native table, model.hypercalls and services.native); any other non-zero
  immediate, and SMC with one, is unhandled (-1).

Calls that act (PSCI's) return an `Action` from `handle` for whatever runs
the vCPUs. The VMs, their capabilities and the resource manager's VM are
`model.vms` and `model.rm_vm`. Modules this model leaves out (CPU
workarounds) answer -1.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import abi, smccc
from ..abi.devicetree import PRIMARY_VM_ID, RM_LINK, RmRpc
from ..conduit import NUM_REGS, Action, GuestMemory, Kind
from ..rm import ResourceManager
from ..smccc import MASK32, MASK64
from ..trap import TrapCall, classify, describe_hvc_imm
from .context import Context
from .hypercalls import NativeAbi
from .personas import DEFAULT_PERSONA, Persona, get_persona
from .psci import PowerState
from .rm_vm import boot_resource_manager
from .services import NATIVE_HANDLERS, Service, check_services
from .services.calling import KVM_UNKNOWN, unknown
from .vms import RIGHTS_RWX, VMID_RM, Vm, Vms

Route = Callable[[list[int]], Action | None]
_ROUTE_CACHE_LIMIT = 4096
# _PADS[n]: the zeros that fill a register file after X0 and n arguments
_PADS = tuple((0,) * (NUM_REGS - 1 - n) for n in range(NUM_REGS))


class Hypervisor:
    """The model behind a conduit; configure it with a persona. `link` names
    the RM link's interrupts and free virqs: the measured ones, or those of
    the machine the primary VM runs on (`gunyah boot`'s GIC)."""

    def __init__(
        self, persona: Persona | str = DEFAULT_PERSONA, cpus: int = 1, link: RmRpc = RM_LINK
    ) -> None:
        self.persona = get_persona(persona) if isinstance(persona, str) else persona
        p = self.persona
        self.power = PowerState(cpus)  # the VM's vCPUs, as PSCI turns them on and off
        self.cpu = 0  # the vCPU whose call is being served
        self.pc = 0  # where it trapped
        # the VMs: the primary, whose vCPUs make the calls, and the RM's
        self.vms = Vms(loses_exits=p.loses_vm_exited, link=link)
        self.vms.vm_create(PRIMARY_VM_ID, VMID_RM)
        self.vm: Vm = self.vms[PRIMARY_VM_ID]
        self.rm: ResourceManager | None = None  # at the other end of the VM's queues
        if p.rm:
            self.rm = boot_resource_manager(self.vms, PRIMARY_VM_ID)
        self.native: NativeAbi | None = None  # Gunyah's native calls, in both forms
        self.ctx: Context | None = None
        if p.native or "vendor-hyp" in p.services:
            self.ctx = Context(self.vm, p.api_info, p.flags, p.cores,
                               vcpu=lambda: self.cpu, trace_flags=p.trace_flags)  # fmt: skip
            self.native = NativeAbi(self.ctx, p.features, lambda: self.pc)
        # the one lookup: a function ID's owner, then the service that answers it
        services = check_services(p.services)
        self._by_owner: dict[int, tuple[Service, ...]] = {}
        for s in services:
            self._by_owner[s.owner] = (*self._by_owner.get(s.owner, ()), s)
        # what SMCCC_ARCH_FEATURES reports: (owner, function) of each advertised call
        self.advertised = frozenset((s.owner, f) for s in services for f in s.advertised)
        self._default: Route = KVM_UNKNOWN if p.kvm_smccc else unknown
        self._check_id = not p.kvm_smccc
        self._hvc_imm_ignored = p.kvm_smccc
        self._routes: dict[int, Route] = {}

    def attach_ram(self, base: int, data: bytearray | memoryview) -> None:
        """The machine's RAM at physical `base` (the unicorn vCPU's or the
        boot's), mapped into the primary VM's stage 2 at IPA == PA, RWX."""
        self.vms.add_ram(base, data)
        self.vms.map(PRIMARY_VM_ID, base, base, len(data), RIGHTS_RWX)

    def attach_memory(self, memory: GuestMemory | None) -> None:
        """The calling VM's memory, for the calls that copy to or from it
        (message queues); a runner attaches its own, and None when it ends."""
        if self.ctx is not None:
            self.ctx.memory = memory

    # -- the trap -----------------------------------------------------------
    def handle(
        self, regs: list[int], kind: Kind, imm: int, cpu: int = 0, pc: int = 0
    ) -> Action | None:
        """Serve one trap of vCPU `cpu` at address `pc` (the HVC or SMC): read
        and rewrite the 18-register file in place; return what the call asks
        the vCPUs' runner to do, if anything. Immediate 0 is SMCCC with the
        function ID in X0's low 32 bits, as `classify` says; written out here
        because this is the hot path (a test holds the two together). Not
        thread-safe: a runner of several vCPUs serves one call at a time."""
        self.cpu = cpu
        if imm and not (kind == "hvc" and self._hvc_imm_ignored):
            self.pc = pc  # X9 of a native call: the return address
            self._trap_imm(regs, kind, imm)
            return None
        fid = regs[0] & MASK32
        route = self._routes.get(fid)
        if route is None:
            route = self._new_route(fid)
        return route(regs)

    def call(self, function_id: int, *args: int, kind: Kind = "hvc", imm: int = 0) -> list[int]:
        """One call from Python: X0 = function_id, X1.. = args; returns X0..X17."""
        try:
            regs = [function_id, *args, *_PADS[len(args)]]
        except IndexError:
            raise ValueError(f"at most {NUM_REGS - 1} arguments, got {len(args)}") from None
        self.handle(regs, kind, imm)
        return regs

    def _new_route(self, fid: int) -> Route:
        route = self._route_for(fid)
        if len(self._routes) < _ROUTE_CACHE_LIMIT:
            self._routes[fid] = route
        return route

    def _route_for(self, fid: int) -> Route:
        """The route of a function ID: made by the service that registered its
        owner and function, or the default where none does."""
        f = smccc.FunctionId.decode(fid)
        if f.valid or not self._check_id:
            for service in self._by_owner.get(f.owner, ()):
                if service.answers(f.function):
                    route = service.make(self, f)
                    return route if route is not None else self._default
        return self._default

    # -- non-zero immediates: Gunyah's native ABI -------------------------------
    def _trap_imm(self, regs: list[int], kind: Kind, imm: int) -> None:
        call = classify(kind, imm, regs[0])
        if call.number is not None and self.native is not None and self.persona.native:
            self.native.native_route(call.number)(regs)
        else:
            regs[0] = MASK64

    # -- quirks the services' routes go through -----------------------------------
    def dirty(self, route: Route) -> Route:
        """A 32-bit call's route, for a persona that leaves garbage in the
        upper halves of its results."""
        if not self.persona.dirty_upper:
            return route
        dirty = self.persona.dirty_upper << 32

        def wrapped(regs: list[int]) -> Action | None:
            action = route(regs)
            regs[0:4] = [(v & MASK32) | dirty for v in regs[0:4]]
            return action

        return wrapped


def describe_call(persona: Persona, kind: Kind, imm: int, function_id: int) -> str | None:
    """A note on what the model does not model about this call, if anything."""
    call = classify(kind, imm, function_id)
    number = call.number
    if call.function_id is not None:
        f = smccc.FunctionId.decode(call.function_id)
        if f.owner == smccc.OWNER_VENDOR_HYP:
            vendor = abi.VendorHypCall.decode(f.function)
            if vendor.call_class == abi.CLASS_HYPERCALL:
                number = vendor.number
    if persona.dispatch == "gunyah" and number is not None and number in abi.HYPERCALLS:
        name = abi.HYPERCALLS[number]
        if name not in NATIVE_HANDLERS:
            return (
                f"{name}: checked as Gunyah checks it (reserved arguments, capabilities); "
                "where those pass, the real call acts and this model answers UNIMPLEMENTED"
            )
    return None


@dataclass(frozen=True)
class CallResult:
    """One call into the model, as `gunyah call` makes it: what was asked, the
    register file after the trap, and X0..X3 at the call's width."""

    persona: str
    call: TrapCall
    arguments: list[int]
    registers: list[int]
    note: str | None

    @property
    def results(self) -> list[int]:
        width_mask = smccc.MASK32 if self.call.width == 32 else smccc.MASK64
        return [r & width_mask for r in self.registers[:4]]

    def to_dict(self) -> dict[str, Any]:
        c = self.call
        fid = abi.describe_function_id(c.function_id) if c.function_id is not None else None
        return {
            "persona": self.persona,
            "conduit": c.conduit,
            "imm": c.imm,
            "function": fid,
            "hvc": describe_hvc_imm(c.imm) if fid is None else None,
            "arguments": self.arguments,
            "width": c.width,
            "results": self.results,
            "registers": self.registers,
            "meaning": {
                "note": self.note,
                **abi.describe_results(c.function_id, c.imm, self.results),
            },
        }


def call_once(
    hyp: Hypervisor, kind: Kind, imm: int, values: list[int], pc: int = 0
) -> CallResult:
    """One trap at address `pc` with X0.. from `values`: with immediate 0 the
    first is the function ID (X0) and the rest X1..; otherwise the values are
    X0.. as given. ValueError names what is wrong with the values."""
    if imm == 0 and not values:
        raise ValueError("give a FUNCTION_ID (or --hvc-imm N with register values)")
    if len(values) > NUM_REGS:
        raise ValueError(f"at most {NUM_REGS} register values (X0..X17), got {len(values)}")
    if imm == 0 and values[0] >> 32:
        raise ValueError(f"function ID {values[0]:#x} does not fit in 32 bits")
    regs = values + [0] * (NUM_REGS - len(values))
    call = classify(kind, imm, regs[0])
    note = describe_call(hyp.persona, kind, imm, regs[0])
    hyp.handle(regs, kind, imm, 0, pc)
    arguments = values[1:] if call.abi == "smccc" else values
    return CallResult(hyp.persona.name, call, arguments, regs, note)
