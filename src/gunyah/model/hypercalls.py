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
  cspace, and the call's handler (HANDLERS) or, where the model has none,
  UNIMPLEMENTED.

The calling VM is the primary VM (HLOS) of the QEMU build as its resource
manager sets it up: cap 0 the message queue to the resource manager (send),
cap 1 the one from it (receive), cap 2 the resource manager's vCPU (affinity)
(quic/gunyah-resource-manager bf31a9a: src/vm_config/vm_config.c, vm_config_add_rm_rpc;
src/vm_creation/hlos_vm.c, hlos_vm_get_rm_vcpu_cap). Other capabilities it
may hold are unknown here: their slots read as empty.
"""

from __future__ import annotations

import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from ..abi import cspace as cs
from ..abi.devicetree import RM_LINK
from ..abi.hvc import DECLARED, TABLE_SIZE, Hypercall
from ..conduit import GuestMemory
from ..smccc import MASK32, MASK64

ERROR_OK = 0
ERROR_UNIMPLEMENTED = -1
ERROR_ARGUMENT_INVALID = 1
ERROR_ARGUMENT_SIZE = 2
ERROR_ARGUMENT_ALIGNMENT = 3
ERROR_BUSY = 31
ERROR_MSGQUEUE_EMPTY = 60
ERROR_MSGQUEUE_FULL = 61

Route = Callable[[list[int]], None]


# -- the objects the primary VM's capabilities name ---------------------------
@dataclass
class Msgqueue:
    """A message queue (hyp/ipc/msgqueue): depth, message size, thresholds,
    and the messages waiting, oldest first. `notify`, when set, is told after
    each message sent to it or taken from it: the other end's program (the
    resource manager, for the primary VM's queues) runs then."""

    depth: int = 8
    max_msg_size: int = 240
    notfull_thd: int = 7
    notempty_thd: int = 1
    messages: deque[bytes] = field(default_factory=deque)
    notify: Callable[[], None] | None = None

    @property
    def full(self) -> bool:
        return len(self.messages) == self.depth


@dataclass
class Thread:
    """A vCPU another VM runs (the resource manager's, for the primary VM)."""

    affinity: int = 0


def primary_vm_cspace() -> dict[int, cs.Cap]:
    msg, link = cs.RIGHTS["msgqueue"], RM_LINK

    def queue() -> Msgqueue:
        return Msgqueue(depth=link.queue_depth, max_msg_size=link.message_size,
                        notfull_thd=link.queue_depth - 1)  # fmt: skip

    return {
        link.tx_cap: cs.Cap("msgqueue", 1 << msg["send"], queue()),
        link.rx_cap: cs.Cap("msgqueue", 1 << msg["receive"], queue()),
        2: cs.Cap("thread", 1 << cs.RIGHTS["thread"]["affinity"], Thread()),
    }


class Cspace:
    """A VM's capability space: lookups with their errors in the hypervisor's
    order (cspace_twolevel.c: cspace_lookup_object, cspace_lookup_object_any)."""

    def __init__(self, caps: dict[int, cs.Cap]) -> None:
        self.caps = caps

    def _slot(self, cap_id: int) -> tuple[int, cs.Cap | None]:
        if cs.decode_cap_id(cap_id) is None:
            return cs.ERROR_ARGUMENT_INVALID, None
        cap = self.caps.get(cap_id)
        return (cs.ERROR_CAP_NULL, None) if cap is None else (ERROR_OK, cap)

    def lookup(self, cap_id: int, object_type: str, rights: int) -> tuple[int, cs.Cap | None]:
        err, cap = self._slot(cap_id)
        if cap is None:
            return err, None
        if cap.object_type != object_type:
            return cs.ERROR_WRONG_OBJECT_TYPE, None
        if cap.rights & rights != rights:
            return cs.ERROR_INSUFFICIENT_RIGHTS, None
        return ERROR_OK, cap

    def lookup_any(
        self, cap_id: int, rights: int, object_type: str | None
    ) -> tuple[int, cs.Cap | None]:
        err, cap = self._slot(cap_id)
        if cap is None:
            return err, None
        if cap.rights & rights != rights:
            return cs.ERROR_INSUFFICIENT_RIGHTS, None
        if object_type is not None and cap.object_type != object_type:
            return cs.ERROR_WRONG_OBJECT_TYPE, None
        return ERROR_OK, cap


@dataclass
class Context:
    """What a handler sees beyond its arguments: the calling VM and vCPU."""

    cspace: Cspace
    api_info: int
    flags: tuple[int, int, int]
    cores: int  # physical CPUs (platform_cpu_exists)
    vcpu: Callable[[], int] = lambda: 0  # the calling vCPU
    trace_flags: int = 0
    prng_windows: dict[int, tuple[float, int]] = field(default_factory=dict)
    memory: GuestMemory | None = None  # the calling VM's, through its own translation


# -- handlers: what a call does once its checks and lookups pass --------------
Args = list[int]
Caps = list[cs.Cap]
Handler = Callable[[Context, Args, Caps], tuple[int, ...]]


def _identify(ctx: Context, args: Args, caps: Caps) -> tuple[int, ...]:
    return (ctx.api_info, *ctx.flags)


def _unimplemented_with_cap(ctx: Context, args: Args, caps: Caps) -> tuple[int, ...]:
    return (ERROR_UNIMPLEMENTED, cs.CAP_INVALID)  # partition_create_partition


def _unimplemented(ctx: Context, args: Args, caps: Caps) -> tuple[int, ...]:
    return (ERROR_UNIMPLEMENTED,)


PRNG_WINDOW = 0.033  # prng_api.c: four reads per vCPU each 33 ms, then BUSY
PRNG_READS = 4


def _prng(ctx: Context, args: Args, caps: Caps) -> tuple[int, ...]:
    """prng_get_entropy (hyp/misc/prng_hw/src/prng_api.c), random words from
    the host's CSPRNG."""
    count = args[0]
    if count == 0 or count > 16:
        return (ERROR_ARGUMENT_SIZE,)
    if count % 4:
        return (ERROR_ARGUMENT_ALIGNMENT,)
    now = time.monotonic()
    cpu = ctx.vcpu()
    start, reads = ctx.prng_windows.get(cpu, (-1.0, 0))
    if now - start < PRNG_WINDOW:
        if reads == PRNG_READS:
            return (ERROR_BUSY,)
        ctx.prng_windows[cpu] = (start, reads + 1)
    else:
        ctx.prng_windows[cpu] = (now, 1)
    words = [secrets.randbits(32) for _ in range(count // 4)]
    return (ERROR_OK, *words)


YIELD_HINT_YIELD, YIELD_HINT_YIELD_TO_THREAD = 0, 1


def _scheduler_yield(ctx: Context, args: Args, caps: Caps) -> tuple[int, ...]:
    """scheduler_fprr: impl_def (bit 31) set is invalid; hint 0 yields, hint 1
    yields to the thread in arg1 (looked up with yield_to), others invalid."""
    control, arg1 = args[0], args[1]
    if control >> 31:
        return (ERROR_ARGUMENT_INVALID,)
    hint = control & 0xFFFF
    if hint == YIELD_HINT_YIELD:
        return (ERROR_OK,)
    if hint == YIELD_HINT_YIELD_TO_THREAD:
        rights = 1 << cs.RIGHTS["thread"]["yield_to"]
        return (ctx.cspace.lookup(arg1, "thread", rights)[0],)
    return (ERROR_ARGUMENT_INVALID,)


# trace.c: ERROR and LOG_BUFFER are not the guest's to change
TRACE_PUBLIC = MASK64 & ~((1 << 0) | (1 << 5))


def _trace_update(ctx: Context, args: Args, caps: Caps) -> tuple[int, ...]:
    ctx.trace_flags = (ctx.trace_flags | (args[0] & TRACE_PUBLIC)) & ~(args[1] & TRACE_PUBLIC)
    return (ERROR_OK, ctx.trace_flags)


MSGQUEUE_UNCHANGED = MASK32  # count_t -1: threshold or delay unchanged
MSGQUEUE_THRESHOLD_MAXIMUM = MASK32 - 1


def _queue(caps: Caps) -> Msgqueue:
    """The message queue a msgqueue call looked up first."""
    q = caps[0].obj
    assert isinstance(q, Msgqueue)
    return q


def _msgqueue_send(ctx: Context, args: Args, caps: Caps) -> tuple[int, ...]:
    """msgqueue_send_msg (msgqueue_common.c). A copy from the guest that fails
    (more than a message, or an address its translation refuses) is not
    reported: OK and not_full 1, nothing queued, as the hypervisor does.
    The push flag would raise the receiver's interrupt; there is none here."""
    q = _queue(caps)
    if q.full:
        return (ERROR_MSGQUEUE_FULL, 0)
    size, data = args[1], args[2]
    if size > q.max_msg_size:
        return (ERROR_OK, 1)
    message = b"" if size == 0 else (ctx.memory.read(data, size) if ctx.memory else None)
    if message is None:
        return (ERROR_OK, 1)
    q.messages.append(message)
    not_full = int(not q.full)
    if q.notify is not None:
        q.notify()
    return (ERROR_OK, not_full)


def _msgqueue_receive(ctx: Context, args: Args, caps: Caps) -> tuple[int, ...]:
    """msgqueue_receive_msg (msgqueue_common.c). A copy to the guest that
    fails (a buffer smaller than the message, or one its translation will not
    let it write) is not reported either: OK, size 0, not_empty 1, and the
    message stays queued."""
    q = _queue(caps)
    if not q.messages:
        return (ERROR_MSGQUEUE_EMPTY, 0, 0)
    buffer, max_size = args[1], args[2]
    message = q.messages[0]
    mem = ctx.memory
    copied = len(message) <= max_size and (not message or (mem is not None
                                                            and mem.write(buffer, message)))
    if not copied:
        return (ERROR_OK, 0, 1)
    q.messages.popleft()
    not_empty = int(bool(q.messages))
    if q.notify is not None:
        q.notify()
    return (ERROR_OK, len(message), not_empty)


def _msgqueue_flush(ctx: Context, args: Args, caps: Caps) -> tuple[int, ...]:
    q = _queue(caps)
    q.messages.clear()
    return (ERROR_OK,)


def _msgqueue_configure_send(ctx: Context, args: Args, caps: Caps) -> tuple[int, ...]:
    q = _queue(caps)
    thres, delay = args[1], args[2]
    if delay != MSGQUEUE_UNCHANGED:
        return (ERROR_UNIMPLEMENTED,)
    if thres >= q.depth and thres != MSGQUEUE_UNCHANGED:
        return (ERROR_ARGUMENT_INVALID,)
    if thres != MSGQUEUE_UNCHANGED:
        q.notfull_thd = thres
    return (ERROR_OK,)


def _msgqueue_configure_receive(ctx: Context, args: Args, caps: Caps) -> tuple[int, ...]:
    q = _queue(caps)
    thres, delay = args[1], args[2]
    if delay != MSGQUEUE_UNCHANGED:
        return (ERROR_UNIMPLEMENTED,)
    special = (MSGQUEUE_THRESHOLD_MAXIMUM, MSGQUEUE_UNCHANGED)
    if thres == 0 or (thres > q.depth and thres not in special):
        return (ERROR_ARGUMENT_INVALID,)
    if thres == MSGQUEUE_THRESHOLD_MAXIMUM:
        q.notempty_thd = q.depth
    elif thres != MSGQUEUE_UNCHANGED:
        q.notempty_thd = thres
    return (ERROR_OK,)


CPU_INDEX_INVALID = 0xFFFF


def _vcpu_set_affinity(ctx: Context, args: Args, caps: Caps) -> tuple[int, ...]:
    """hyp/vm/vcpu/aarch64/src/hypercalls.c: the CPU is checked before the
    capability; moving a vCPU off every CPU needs the disable right too
    (the fprr scheduler can migrate)."""
    cap_id, affinity = args[0], args[1]
    thread = cs.RIGHTS["thread"]
    rights = 1 << thread["affinity"]
    if affinity == CPU_INDEX_INVALID:
        rights |= 1 << thread["disable"]
    elif affinity >= ctx.cores:
        return (ERROR_ARGUMENT_INVALID,)
    err, cap = ctx.cspace.lookup(cap_id, "thread", rights)
    if cap is None:
        return (err,)
    assert isinstance(cap.obj, Thread)
    cap.obj.affinity = affinity
    return (ERROR_OK,)


def _memextent_donate(ctx: Context, args: Args, caps: Caps) -> tuple[int, ...]:
    """memextent/src/hypercalls.c: the donation type picks which capability
    is looked up first (the child's, or the sender's for a sibling)."""
    kind, source, dest = args[0] & 0xFF, args[1], args[2]
    donate = 1 << cs.RIGHTS["memextent"]["donate"]
    if kind > 2:
        return (ERROR_ARGUMENT_INVALID,)
    first = {0: dest, 1: source, 2: source}[kind]
    err, cap = ctx.cspace.lookup(first, "memextent", donate)
    return (err if cap is None else ERROR_UNIMPLEMENTED,)


# Handlers whose answer depends on the build alone: their routes are made
# once, constant writes (the hot path of every guest that identifies).
CONSTANT = frozenset({"hypervisor_identify"})

HANDLERS: dict[str, Handler] = {
    "hypervisor_identify": _identify,
    "partition_create_partition": _unimplemented_with_cap,
    "object_reset": _unimplemented,
    "object_reset_from": _unimplemented,
    "cspace_revoke_cap_from": _unimplemented,
    "prng_get_entropy": _prng,
    "scheduler_yield": _scheduler_yield,
    "trace_update_class_flags": _trace_update,
    "msgqueue_send": _msgqueue_send,
    "msgqueue_receive": _msgqueue_receive,
    "msgqueue_flush": _msgqueue_flush,
    "msgqueue_configure_send": _msgqueue_configure_send,
    "msgqueue_configure_receive": _msgqueue_configure_receive,
    "vcpu_set_affinity": _vcpu_set_affinity,
    "memextent_donate": _memextent_donate,
}


def _bits(*positions: int | tuple[int, int]) -> int:
    mask = 0
    for p in positions:
        lo, hi = (p, p) if isinstance(p, int) else p
        mask |= ((1 << (hi - lo + 1)) - 1) << lo
    return mask


# Checks on flag arguments that come before any lookup, by call: (argument
# index, reserved bits, the error) from each handler's source; the bit
# layouts are the .tc bitfields'.
MAPPING_ATTRS_RES0 = _bits((24, 31), (8, 15), 7, 3)  # memextent_mapping_attrs
ACCESS_ATTRS_RES0 = _bits((8, 31), 7, 3)  # memextent_access_attrs
MAP_FLAGS_RES0 = _bits((1, 30))  # addrspace_map_flags
MODIFY_RES0 = _bits((8, 30))  # memextent_modify_flags, memextent_donate_options
VCPU_OPTIONS_KNOWN = _bits(0, 1, 2, 3, 4, 5, 8, 9, 63)  # vcpu_option_flags
PRECHECKS: dict[str, tuple[tuple[int, int, int], ...]] = {
    "vcpu_configure": ((1, ~VCPU_OPTIONS_KNOWN & MASK64, ERROR_ARGUMENT_INVALID),),
    "vcpu_poweron": ((3, ~_bits(0, 1) & MASK64, ERROR_ARGUMENT_INVALID),),
    "vcpu_poweroff": ((1, ~_bits(0) & MASK64, ERROR_ARGUMENT_INVALID),),
    "vpm_group_configure": ((1, ~_bits(0) & MASK64, ERROR_UNIMPLEMENTED),),
    "addrspace_map": ((3, MAPPING_ATTRS_RES0, ERROR_ARGUMENT_INVALID),
                      (4, MAP_FLAGS_RES0, ERROR_ARGUMENT_INVALID)),
    "addrspace_unmap": ((3, MAP_FLAGS_RES0, ERROR_ARGUMENT_INVALID),),
    "addrspace_update_access": ((3, ACCESS_ATTRS_RES0, ERROR_ARGUMENT_INVALID),
                                (4, MAP_FLAGS_RES0, ERROR_ARGUMENT_INVALID)),
    "memextent_modify": ((1, MODIFY_RES0, ERROR_ARGUMENT_INVALID),),
    "memextent_donate": ((0, MODIFY_RES0, ERROR_ARGUMENT_INVALID),),
}  # fmt: skip


# -- running a call -----------------------------------------------------------
def perform(call: Hypercall, ctx: Context, args: Args) -> tuple[int, ...]:
    """The call's results after its checks (the reserved arguments are the
    caller's: only the native form checks them), lookups and handler; every
    result the declaration names, zero where the call left it."""
    for index, reserved_bits, error in PRECHECKS.get(call.name, ()):
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
    handler = HANDLERS.get(call.name)
    return handler(ctx, args, caps) if handler is not None else (ERROR_UNIMPLEMENTED,)


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
    number, made once."""

    def __init__(self, ctx: Context, features: frozenset[str], pc: Callable[[], int]) -> None:
        self.ctx = ctx
        self.pc = pc  # the trapping instruction's address, for X9
        entries = {n: c for n, c in DECLARED.items() if c.feature in (None, *features)}
        self.native: dict[int, Route] = {n: self._native(c) for n, c in entries.items()}
        self.smccc: dict[int, Route] = {n: self._smccc(c) for n, c in entries.items()}

    def native_route(self, number: int) -> Route:
        route = self.native.get(number)
        if route is not None:
            return route
        return self._hole if number < TABLE_SIZE else _past_table

    def smccc_route(self, number: int) -> Route:
        return self.smccc.get(number, _past_table)

    def _sanitise(self, regs: list[int], values: list[int]) -> None:
        regs[0:8] = values
        regs[9] = (self.pc() + 4) & MASK64  # ELR_EL2: the instruction after the HVC
        regs[10:18] = _ZEROS8

    def _hole(self, regs: list[int]) -> None:
        self._sanitise(regs, [MASK64, 0, 0, 0, 0, 0, 0, 0])

    def _native(self, call: Hypercall) -> Route:
        if call.name in CONSTANT:
            values = _native_values(call, HANDLERS[call.name](self.ctx, [], []))
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
                    sanitise(regs, _native_values(call, (ERROR_ARGUMENT_INVALID,)))
                    return
            args = [regs[i] & masks[i] for i in range(n)]
            sanitise(regs, _native_values(call, perform(call, ctx, args)))

        return route

    def _smccc(self, call: Hypercall) -> Route:
        outs = [(o.ctype, o.mask) for o in call.outputs]
        if call.name in CONSTANT:
            results = HANDLERS[call.name](self.ctx, [], [])
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
