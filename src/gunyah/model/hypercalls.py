"""Gunyah's native hypercalls as the model serves them, in both forms, from
their declarations (`gunyah.abi.hvc`).

What every call gets from its declaration, as the hypervisor's generated
wrappers give it (quic/gunyah-hypervisor 36ca3a2: hyp/core/api/aarch64/
templates/hypcall_table.S.tmpl and c_wrapper.c.tmpl, hyp/vm/vcpu/armv8-64/
src/return.S; hyp/vm/smccc/aarch64/templates/hyp_wrapper.c.tmpl):

* Native form, `hvc #0x6000+n`: arguments from X0, each cut to its type's
  width. A reserved argument that is not 0 (res0) or all ones (res1) gives
  ARGUMENT_INVALID before anything else. Results from X0 up; the rest of
  X1..X7 zeroed, X8 kept, X9 the guest's return address, X10..X17 zeroed;
  errors are 32 bits, zero-extended. A hole in the table answers X0 = -1 and
  is sanitised as an entry is; a number past the table answers X0 = -1 and
  leaves every other register alone.
* SMCCC form, 0xC6008000+n: arguments from X1, no reserved checks, only the
  declared results written (errors sign-extended), every other register
  left alone; a number with no entry answers X0 = -1.
* Then the capability lookups the declaration names, in the calling VM's
  cspace, and the call's handler (registered in model.services.native) or, where the model has none,
  UNIMPLEMENTED.

Capabilities are looked up in the cspace of the VM whose vCPU made the call
(`Context.vm`); the primary VM's are those its resource manager gives it
(`model.rm_vm`). Other capabilities it may hold are unknown here: their
slots read as empty.
"""

from __future__ import annotations

from collections.abc import Callable

from ..abi.errors import Error
from ..abi.hvc import DECLARED, TABLE_SIZE, Hypercall
from ..smccc import MASK32, MASK64
from .context import Args, Caps, Context
from .services.registry import NATIVE_CONSTANT, NATIVE_HANDLERS, NATIVE_PRECHECKS

Route = Callable[[list[int]], None]


# -- running a call -----------------------------------------------------------
def perform(call: Hypercall, ctx: Context, args: Args) -> tuple[int, ...]:
    """The call's results after its checks (the reserved arguments are the
    caller's: only the native form checks them), lookups and handler; every
    result the declaration names, zero where the call left it."""
    for index, reserved_bits, error in NATIVE_PRECHECKS.get(call.name, ()):
        if args[index] & reserved_bits:
            return (error,)
    caps: Caps = []
    for lk in call.lookups:
        if lk.any_object:
            err, cap = ctx.cspace.lookup_any(args[lk.index], lk.rights, lk.object_type)
        else:
            assert lk.object_type is not None
            err, cap = ctx.cspace.lookup(args[lk.index], lk.object_type, lk.rights)
        if cap is None:
            return (err,)
        caps.append(cap)
    handler = NATIVE_HANDLERS.get(call.name)
    return handler(ctx, args, caps) if handler is not None else (Error.UNIMPLEMENTED,)


def _native_values(call: Hypercall, results: tuple[int, ...]) -> list[int]:
    """X0..X7 as the native return leaves them: each result at its type's
    width (the error zero-extended), the rest zero."""
    values = [0] * 8
    for i, out in enumerate(call.outputs):
        v = results[i] if i < len(results) else 0
        values[i] = int(bool(v)) if out.ctype == "bool" else v & out.mask
    return values


def _smccc_value(ctype: str, mask: int, v: int) -> int:
    if ctype == "error":
        v &= MASK32
        return v | (MASK64 ^ MASK32) if v >> 31 else v
    return int(bool(v)) if ctype == "bool" else v & mask


class NativeAbi:
    """The native table and its SMCCC form for one VM: a route per call
    number, made at its first call and kept (a VM's hypervisor is made at
    each VM_START, and most VMs make a handful of the calls)."""

    def __init__(self, ctx: Context, features: frozenset[str], pc: Callable[[], int]) -> None:
        self.ctx = ctx
        self.pc = pc  # the trapping instruction's address, for X9
        self.entries = {n: c for n, c in DECLARED.items() if c.feature in (None, *features)}
        self.native: dict[int, Route] = {}
        self.smccc: dict[int, Route] = {}

    def native_route(self, number: int) -> Route:
        route = self.native.get(number)
        if route is not None:
            return route
        call = self.entries.get(number)
        if call is None:
            return self._hole if number < TABLE_SIZE else _past_table
        route = self.native[number] = self._native(call)
        return route

    def smccc_route(self, number: int) -> Route:
        route = self.smccc.get(number)
        if route is not None:
            return route
        call = self.entries.get(number)
        if call is None:
            return _past_table
        route = self.smccc[number] = self._smccc(call)
        return route

    def _sanitise(self, regs: list[int], values: list[int]) -> None:
        regs[0:8] = values
        regs[9] = (self.pc() + 4) & MASK64  # ELR_EL2: the instruction after the HVC
        regs[10:18] = _ZEROS8

    def _hole(self, regs: list[int]) -> None:
        self._sanitise(regs, [MASK64, 0, 0, 0, 0, 0, 0, 0])

    def _native(self, call: Hypercall) -> Route:
        if call.name in NATIVE_CONSTANT:
            values = _native_values(call, NATIVE_HANDLERS[call.name](self.ctx, [], []))
            pc, zeros = self.pc, _ZEROS8

            def constant(regs: list[int]) -> None:
                regs[0:8] = values
                regs[9] = (pc() + 4) & MASK64
                regs[10:18] = zeros

            return constant
        masks = [a.mask for a in call.inputs]
        reserved = call.reserved if call.checks_reserved else ()
        n = len(masks)
        ctx, sanitise = self.ctx, self._sanitise

        def route(regs: list[int]) -> None:
            for index, value in reserved:
                if regs[index] != value:
                    sanitise(regs, _native_values(call, (Error.ARGUMENT_INVALID,)))
                    return
            args = [regs[i] & masks[i] for i in range(n)]
            sanitise(regs, _native_values(call, perform(call, ctx, args)))

        return route

    def _smccc(self, call: Hypercall) -> Route:
        outs = [(o.ctype, o.mask) for o in call.outputs]
        if call.name in NATIVE_CONSTANT:
            results = NATIVE_HANDLERS[call.name](self.ctx, [], [])
            values = [_smccc_value(t, m, v) for (t, m), v in zip(outs, results, strict=True)]
            n_out = len(values)

            def constant(regs: list[int]) -> None:
                regs[0:n_out] = values

            return constant
        masks = [a.mask for a in call.inputs]
        n = len(masks)
        ctx = self.ctx

        def route(regs: list[int]) -> None:
            args = [regs[i + 1] & masks[i] for i in range(n)]
            results = perform(call, ctx, args)
            for i, (ctype, mask) in enumerate(outs):
                regs[i] = _smccc_value(ctype, mask, results[i] if i < len(results) else 0)

        return route


_ZEROS8 = [0] * 8


def _past_table(regs: list[int]) -> None:
    regs[0] = MASK64
