"""An executable model of the hypervisor side of the identification ABI.

It answers a trapped HVC/SMC the way the Gunyah hypervisor's dispatcher does
(quic/gunyah-hypervisor: hyp/vm/smccc/aarch64/src/smccc_64.c,
src/smccc_hypercalls.c, src/smccc.c, templates/hyp_wrapper.c.tmpl), down to
which registers it writes and at which width:

* imm 0 is SMCCC. X0's low 32 bits are the function ID. Bits 23:17 set:
  X0 = -1 (64-bit) and nothing else.
* Vendor-hypervisor owner: class 0b10 (hypercall) only as fast 64-bit, the
  native call's arguments from X1 and results from X0; class 0b11 (service)
  only as fast 32-bit: CALL_UID writes X0..X3, REVISION writes the 64-bit API
  info word to X0, CALL_COUNT is deprecated (-1); any other form -1.
* Arm and standard-hypervisor fast 32-bit calls it implements (SMCCC_VERSION,
  SMCCC_ARCH_FEATURES, CALL_UID, REVISION) pass through the 32-bit dispatch:
  X0..X3 all come back zero-extended from 32 bits, X1..X3 truncated copies of
  what the guest passed where the handler leaves them.
* Anything unhandled: X0 = -1 in the full 64 bits, other registers untouched.
* `hvc #0x6000+N` is native call N, arguments and results from X0; any other
  non-zero immediate, and SMC with one, is unhandled (-1).

* Standard secure service (owner 4) fast calls are PSCI, served from the
  persona's set in `model.psci` (Gunyah's or KVM's); calls that act return an
  `Action` from `handle` for whatever runs the vCPUs.

* Native calls, in both forms, are `model.hypercalls`: declared once,
  checked and sanitised as the hypervisor's generated wrappers do.
* TRNG (Arm DEN0098, owner 4, functions 0x50..0x5f) is `model.trng`.

Modules this model leaves out (CPU workarounds) answer -1.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import abi, smccc
from ..abi.devicetree import RM_LINK
from ..conduit import NUM_REGS, Action, GuestMemory, Kind
from ..rm import Link, ResourceManager
from ..smccc import MASK32, MASK64
from ..trap import TrapCall, classify, describe_hvc_imm
from . import trng
from .hypercalls import HANDLERS, Context, Cspace, NativeAbi, primary_vm_cspace
from .personas import DEFAULT_PERSONA, Persona, get_persona
from .psci import SETS as PSCI_SETS
from .psci import Handler as PsciHandler
from .psci import PowerState, handler_for

Route = Callable[[list[int]], Action | None]
_ROUTE_CACHE_LIMIT = 4096
# _PADS[n]: the zeros that fill a register file after X0 and n arguments
_PADS = tuple((0,) * (NUM_REGS - 1 - n) for n in range(NUM_REGS))

# pKVM's HYP_MEMINFO (fast, 64-bit, vendor hypervisor function 2): the
# granule of memory sharing, PAGE_SIZE, when X1..X3 are zero
# (arch/arm64/kvm/hyp/nvhe/pkvm.c)
KVM_HYP_MEMINFO = 0xC6000002
PKVM_GRANULE = 4096


def _hyp_meminfo(regs: list[int]) -> None:
    bad = regs[1] or regs[2] or regs[3]
    regs[0:4] = [MASK64 - 2 if bad else PKVM_GRANULE, 0, 0, 0]  # -3: INVALID_PARAMETER


def _unknown(regs: list[int]) -> None:
    regs[0] = MASK64


# -- the handlers, as data ----------------------------------------------------
# A handler of the 32-bit dispatch writes 32-bit ret0..ret3 in place; each
# entry makes it for a persona, or gives None where the persona has no such
# call. Keyed by (owner, function) as the hypervisor registers its handlers
# (hyp/vm/smccc/smccc.ev); SMCCC_ARCH_FEATURES advertises ARCH_FEATURES below.
# Adding a service (PSCI is next) is one entry here and its handler.
Fast32 = Callable[[list[int]], None]


def _version(p: Persona) -> Fast32:
    def version(r: list[int]) -> None:
        r[0] = p.smccc_version

    return version


def _arch_features(p: Persona) -> Fast32:
    def arch_features(r: list[int]) -> None:
        """SMCCC_ARCH_FEATURES(X1): 0 for a call it advertises, else -1 (32-bit)."""
        f = smccc.FunctionId.decode(r[1])
        ok = f.fast and f.valid and not f.smc64 and (f.owner, f.function) in ARCH_FEATURES
        r[0] = 0 if ok else MASK32

    return arch_features


def _standard_call_uid(p: Persona) -> Fast32 | None:
    uid = p.uid
    if not uid:
        return None

    def call_uid(r: list[int]) -> None:
        r[0:4] = uid

    return call_uid


def _standard_revision(p: Persona) -> Fast32:
    def revision(r: list[int]) -> None:
        r[0], r[1] = 1, 0  # major 1, minor 0

    return revision


FAST32_HANDLERS: dict[tuple[int, int], Callable[[Persona], Fast32 | None]] = {
    (smccc.OWNER_ARCH, smccc.FUNC_SMCCC_VERSION): _version,
    (smccc.OWNER_ARCH, smccc.FUNC_ARCH_FEATURES): _arch_features,
    (smccc.OWNER_STANDARD_HYP, smccc.FUNC_CALL_UID): _standard_call_uid,
    (smccc.OWNER_STANDARD_HYP, smccc.FUNC_REVISION): _standard_revision,
}

# What SMCCC_ARCH_FEATURES answers 0 for: measured, SMCCC_VERSION,
# SMCCC_ARCH_FEATURES and the standard-hypervisor CALL_UID, but not its
# REVISION, though the hypervisor answers that call (REAL-GUNYAH.md, "PSCI
# edge cases").
ARCH_FEATURES = frozenset({
    (smccc.OWNER_ARCH, smccc.FUNC_SMCCC_VERSION),
    (smccc.OWNER_ARCH, smccc.FUNC_ARCH_FEATURES),
    (smccc.OWNER_STANDARD_HYP, smccc.FUNC_CALL_UID),
})  # fmt: skip

# Gunyah's vendor services (class 0b11, fast 32-bit only): the registers each
# writes for a persona, None where the persona has none (smccc_hypercalls.c).
VENDOR_SERVICES: dict[int, Callable[[Persona], tuple[int, ...] | None]] = {
    abi.SERVICE_CALL_UID: lambda p: p.uid,  # X0..X3
    abi.SERVICE_REVISION: lambda p: (p.api_info,),  # the 64-bit API info word in X0
}


class Hypervisor:
    """The model behind a conduit; configure it with a persona."""

    def __init__(self, persona: Persona | str = DEFAULT_PERSONA, cpus: int = 1) -> None:
        self.persona = get_persona(persona) if isinstance(persona, str) else persona
        p = self.persona
        self.power = PowerState(cpus)  # the VM's vCPUs, as PSCI turns them on and off
        self.psci = PSCI_SETS.get(p.psci_set or p.dispatch)
        self.cpu = 0  # the vCPU whose call is being served
        self.pc = 0  # where it trapped
        self.native: NativeAbi | None = None  # Gunyah's native calls, in both forms
        self.ctx: Context | None = None
        self.rm: ResourceManager | None = None  # at the other end of the VM's queues
        if p.dispatch == "gunyah":
            self.ctx = Context(Cspace(primary_vm_cspace()), p.api_info, p.flags, p.cores,
                               vcpu=lambda: self.cpu, trace_flags=p.trace_flags)  # fmt: skip
            self.native = NativeAbi(self.ctx, p.features, lambda: self.pc)
            caps = self.ctx.cspace.caps  # the primary VM's queues to the resource manager
            self.rm = ResourceManager()
            Link(self.rm, caps[RM_LINK.tx_cap].obj, caps[RM_LINK.rx_cap].obj)  # type: ignore[arg-type]
        self.trng = trng.Trng(p.trng_uuid) if p.trng_uuid is not None else None
        # KVM serves any HVC as SMCCC, whatever its immediate (handle_hvc in
        # Linux arch/arm64/kvm/handle_exit.c); an SMC with one answers -1 (handle_smc)
        self._hvc_imm_ignored = p.dispatch == "kvm"
        self._routes: dict[int, Route] = {}
        self._route_for: Callable[[int], Route] = {
            "gunyah": self._gunyah_route,
            "kvm": self._kvm_route,
            "none": lambda fid: _unknown,
        }[p.dispatch]

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

    # -- non-zero immediates: Gunyah's native ABI -------------------------------
    def _trap_imm(self, regs: list[int], kind: Kind, imm: int) -> None:
        call = classify(kind, imm, regs[0])
        if call.number is not None and self.native is not None and self.persona.native:
            self.native.native_route(call.number)(regs)
        else:
            regs[0] = MASK64

    # -- Gunyah's SMCCC dispatcher ------------------------------------------
    def _gunyah_route(self, fid: int) -> Route:
        f = smccc.FunctionId.decode(fid)
        if not f.valid:
            return _unknown
        if f.owner == smccc.OWNER_VENDOR_HYP:
            return self._vendor_route(f)
        if f.owner == smccc.OWNER_STANDARD and f.fast and self.trng is not None:
            trng_route = self.trng.route(f)
            if trng_route is not None:
                return trng_route
        if f.owner == smccc.OWNER_STANDARD and f.fast and self.psci is not None:
            psci_handler = handler_for(self.psci, f.function, f.smc64)
            if psci_handler is not None:
                if f.smc64:
                    return self._psci64(psci_handler)
                return self._dirty(self._psci32(psci_handler))
            return _unknown
        if f.fast and not f.smc64:
            handler = self._fast32_handler(f)
            if handler is not None:
                return self._dirty(self._fast32(handler))
        return _unknown

    def _vendor_route(self, f: smccc.FunctionId) -> Route:
        p = self.persona
        if not p.vendor_smccc:
            return _unknown
        call = abi.VendorHypCall.decode(f.function)
        if call.call_class == abi.CLASS_HYPERCALL:
            if not (f.fast and f.smc64) or self.native is None:
                return _unknown
            return self.native.smccc_route(call.number)
        if call.call_class == abi.CLASS_SERVICE and f.fast and not f.smc64:
            service = VENDOR_SERVICES.get(call.number)
            values = service(p) if service is not None else None
            if values is not None:
                return self._dirty(self._write(values))
        # platform calls: the public build has none; falls to the default (-1)
        return _unknown

    def _fast32_handler(self, f: smccc.FunctionId) -> Fast32 | None:
        """The 32-bit dispatch's handler of this call, from FAST32_HANDLERS."""
        make = FAST32_HANDLERS.get((f.owner, f.function))
        return make(self.persona) if make is not None else None

    @staticmethod
    def _fast32(handler: Fast32) -> Route:
        """The 32-bit dispatch: ret0..ret3 start as X0..X3 truncated, and all four
        go back zero-extended, whatever the handler wrote."""

        def route(regs: list[int]) -> None:
            r = [regs[0] & MASK32, regs[1] & MASK32, regs[2] & MASK32, regs[3] & MASK32]
            handler(r)
            regs[0:4] = [v & MASK32 for v in r]

        return route

    def _psci32(self, handler: PsciHandler) -> Route:
        """A PSCI call through the 32-bit dispatch, as `_fast32`."""

        def route(regs: list[int]) -> Action | None:
            r = [regs[0] & MASK32, regs[1] & MASK32, regs[2] & MASK32, regs[3] & MASK32]
            action = handler(self.power, r, self.cpu)
            regs[0:4] = [v & MASK32 for v in r]
            return action

        return route

    def _psci64(self, handler: PsciHandler) -> Route:
        """A PSCI call through the 64-bit dispatch: X0..X3 in and out at 64 bits."""

        def route(regs: list[int]) -> Action | None:
            r = regs[0:4]
            action = handler(self.power, r, self.cpu)
            regs[0:4] = [v & MASK64 for v in r]
            return action

        return route

    def _write(self, values: tuple[int, ...]) -> Route:
        n = len(values)
        vals = list(values)

        def route(regs: list[int]) -> None:
            regs[0:n] = vals

        return route

    def _dirty(self, route: Route) -> Route:
        """A persona that leaves garbage in the upper halves of 32-bit results."""
        if not self.persona.dirty_upper:
            return route
        dirty = self.persona.dirty_upper << 32

        def wrapped(regs: list[int]) -> Action | None:
            action = route(regs)
            regs[0:4] = [(v & MASK32) | dirty for v in regs[0:4]]
            return action

        return wrapped

    # -- KVM ----------------------------------------------------------------
    def _kvm_route(self, fid: int) -> Route:
        p = self.persona
        if fid == smccc.SMCCC_VERSION:
            return self._kvm_result(p.smccc_version)
        if fid == smccc.VENDOR_HYP_CALL_UID and p.uid is not None:
            return self._kvm_result(*p.uid)
        if fid == smccc.KVM_FEATURES and p.kvm_features is not None:
            return self._kvm_result(p.kvm_features)
        if fid == KVM_HYP_MEMINFO and p.kvm_features is not None and p.kvm_features >> 2 & 1:
            return _hyp_meminfo
        f = smccc.FunctionId.decode(fid)
        if self.psci is not None and f.owner == smccc.OWNER_STANDARD and fid == f.canonical:
            handler = handler_for(self.psci, f.function, f.smc64)
            if handler is not None:
                return self._kvm_psci(handler, f.smc64)
        return self._kvm_result(MASK64)

    def _kvm_psci(self, handler: PsciHandler, smc64: bool) -> Route:
        """KVM's PSCI: a 32-bit call's arguments narrowed to 32 bits; X0 the
        answer in 64 bits (a negative code sign-extended), X1..X3 zero."""
        width = MASK64 if smc64 else MASK32

        def route(regs: list[int]) -> Action | None:
            r = [regs[0], regs[1] & width, regs[2] & width, regs[3] & width]
            action = handler(self.power, r, self.cpu)
            if action is not None and action.kind in ("system_off", "system_reset", "cpu_off"):
                return action  # no return to the guest
            regs[0:4] = [r[0] & MASK64, 0, 0, 0]
            return action

        return route

    @staticmethod
    def _kvm_result(*values: int) -> Route:
        """KVM sets X0..X3 on every call it answers, zero where it has nothing."""
        out = [*values, 0, 0, 0][:4]

        def route(regs: list[int]) -> None:
            regs[0:4] = out

        return route


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
        if name not in HANDLERS:
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
