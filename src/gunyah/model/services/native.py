"""The native table's handlers: what each of Gunyah's native hypercalls
does once the checks its declaration implies (reserved arguments,
capability lookups; model.hypercalls) pass. Each registers by the name its
call is declared with (abi/hvc/*.hvc); a declared call without one answers
UNIMPLEMENTED once its lookups pass. Flag arguments checked before any
lookup are registered the same way (`precheck`), their reserved bits from
the .tc bitfields (quic/gunyah-hypervisor 36ca3a2).
"""

from __future__ import annotations

import secrets
import time

from ...abi import cspace as cs
from ...abi import msgqueue
from ...abi.errors import Error
from ...smccc import MASK32, MASK64
from ..context import Args, Caps, Context
from ..vcpu_run import POWERED_OFF
from ..vms import Doorbell, Msgqueue, Thread
from .registry import native, precheck


@native("hypervisor_identify", constant=True)
def _identify(ctx: Context, args: Args, caps: Caps) -> tuple[int, ...]:
    return (ctx.api_info, *ctx.flags)


@native("partition_create_partition")
def _unimplemented_with_cap(ctx: Context, args: Args, caps: Caps) -> tuple[int, ...]:
    return (Error.UNIMPLEMENTED, cs.CAP_INVALID)  # partition_create_partition


@native("object_reset")
@native("object_reset_from")
@native("cspace_revoke_cap_from")
def _unimplemented(ctx: Context, args: Args, caps: Caps) -> tuple[int, ...]:
    return (Error.UNIMPLEMENTED,)


PRNG_WINDOW = 0.033  # prng_api.c: four reads per vCPU each 33 ms, then BUSY
PRNG_READS = 4


@native("prng_get_entropy")
def _prng(ctx: Context, args: Args, caps: Caps) -> tuple[int, ...]:
    """prng_get_entropy (hyp/misc/prng_hw/src/prng_api.c), random words from
    the host's CSPRNG."""
    count = args[0]
    if count == 0 or count > 16:
        return (Error.ARGUMENT_SIZE,)
    if count % 4:
        return (Error.ARGUMENT_ALIGNMENT,)
    now = time.monotonic()
    cpu = ctx.vcpu()
    start, reads = ctx.prng_windows.get(cpu, (-1.0, 0))
    if now - start < PRNG_WINDOW:
        if reads == PRNG_READS:
            return (Error.BUSY,)
        ctx.prng_windows[cpu] = (start, reads + 1)
    else:
        ctx.prng_windows[cpu] = (now, 1)
    words = [secrets.randbits(32) for _ in range(count // 4)]
    return (Error.OK, *words)


YIELD_HINT_YIELD, YIELD_HINT_YIELD_TO_THREAD = 0, 1


@native("scheduler_yield")
def _scheduler_yield(ctx: Context, args: Args, caps: Caps) -> tuple[int, ...]:
    """scheduler_fprr: impl_def (bit 31) set is invalid; hint 0 yields, hint 1
    yields to the thread in arg1 (looked up with yield_to), others invalid."""
    control, arg1 = args[0], args[1]
    if control >> 31:
        return (Error.ARGUMENT_INVALID,)
    hint = control & 0xFFFF
    if hint == YIELD_HINT_YIELD:
        return (Error.OK,)
    if hint == YIELD_HINT_YIELD_TO_THREAD:
        rights = 1 << cs.RIGHTS["thread"]["yield_to"]
        return (ctx.cspace.lookup(arg1, "thread", rights)[0],)
    return (Error.ARGUMENT_INVALID,)


# trace.c: ERROR and LOG_BUFFER are not the guest's to change
TRACE_PUBLIC = MASK64 & ~((1 << 0) | (1 << 5))


@native("trace_update_class_flags")
def _trace_update(ctx: Context, args: Args, caps: Caps) -> tuple[int, ...]:
    ctx.trace_flags = (ctx.trace_flags | (args[0] & TRACE_PUBLIC)) & ~(args[1] & TRACE_PUBLIC)
    return (Error.OK, ctx.trace_flags)


def _bell(caps: Caps) -> Doorbell:
    """The doorbell a doorbell call looked up."""
    bell = caps[0].obj
    assert isinstance(bell, Doorbell)
    return bell


@native("doorbell_send")
def _doorbell_send(ctx: Context, args: Args, caps: Caps) -> tuple[int, ...]:
    """doorbell_send (doorbell.c): any flags, none too; the receiver's virq
    is asserted each time (model.vms.Doorbell.send)."""
    return (Error.OK, _bell(caps).send(args[1]))


@native("doorbell_receive")
def _doorbell_receive(ctx: Context, args: Args, caps: Caps) -> tuple[int, ...]:
    """doorbell_receive: clearing no flag is invalid."""
    if args[1] == 0:
        return (Error.ARGUMENT_INVALID, 0)
    return (Error.OK, _bell(caps).receive(args[1]))


@native("doorbell_reset")
def _doorbell_reset(ctx: Context, args: Args, caps: Caps) -> tuple[int, ...]:
    _bell(caps).reset()
    return (Error.OK,)


@native("doorbell_mask")
def _doorbell_mask(ctx: Context, args: Args, caps: Caps) -> tuple[int, ...]:
    _bell(caps).mask(args[1], args[2])
    return (Error.OK,)


MSGQUEUE_UNCHANGED = MASK32  # count_t -1: threshold or delay unchanged
MSGQUEUE_THRESHOLD_MAXIMUM = MASK32 - 1


def _queue(caps: Caps) -> Msgqueue:
    """The message queue a msgqueue call looked up first."""
    q = caps[0].obj
    assert isinstance(q, Msgqueue)
    return q


@native("msgqueue_send")
def _msgqueue_send(ctx: Context, args: Args, caps: Caps) -> tuple[int, ...]:
    """msgqueue_send_msg (msgqueue_common.c). A copy from the guest that fails
    (more than a message, or an address its translation refuses) is not
    reported: OK and not_full 1, nothing queued, as the hypervisor does.
    The push flag raises the receiver's interrupt whatever the count."""
    q = _queue(caps)
    if q.full:
        return (Error.MSGQUEUE_FULL, 0)
    size, data = args[1], args[2]
    if size > q.max_msg_size:
        return (Error.OK, 1)
    message = b"" if size == 0 else (ctx.memory.read(data, size) if ctx.memory else None)
    if message is None:
        return (Error.OK, 1)
    not_full = int(q.send(message, push=bool(args[3] & msgqueue.PUSH)))
    if q.notify is not None:
        q.notify()
    return (Error.OK, not_full)


@native("msgqueue_receive")
def _msgqueue_receive(ctx: Context, args: Args, caps: Caps) -> tuple[int, ...]:
    """msgqueue_receive_msg (msgqueue_common.c). A copy to the guest that
    fails (a buffer smaller than the message, or one its translation will not
    let it write) is not reported either: OK, size 0, not_empty 1, and the
    message stays queued."""
    q = _queue(caps)
    if not q.messages:
        return (Error.MSGQUEUE_EMPTY, 0, 0)
    buffer, max_size = args[1], args[2]
    message = q.messages[0]
    mem = ctx.memory
    copied = len(message) <= max_size and (not message or (mem is not None
                                                            and mem.write(buffer, message)))
    if not copied:
        return (Error.OK, 0, 1)
    q.receive()
    not_empty = int(bool(q.messages))
    if q.notify is not None:
        q.notify()
    return (Error.OK, len(message), not_empty)


@native("msgqueue_flush")
def _msgqueue_flush(ctx: Context, args: Args, caps: Caps) -> tuple[int, ...]:
    _queue(caps).flush()
    return (Error.OK,)


@native("msgqueue_configure_send")
def _msgqueue_configure_send(ctx: Context, args: Args, caps: Caps) -> tuple[int, ...]:
    """msgqueue_configure_send (msgqueue.c)."""
    q = _queue(caps)
    thres, delay = args[1], args[2]
    if delay != MSGQUEUE_UNCHANGED:
        return (Error.UNIMPLEMENTED,)
    if thres >= q.depth and thres != MSGQUEUE_UNCHANGED:
        return (Error.ARGUMENT_INVALID,)
    if thres != MSGQUEUE_UNCHANGED:
        q.configure_send(thres)
    return (Error.OK,)


@native("msgqueue_configure_receive")
def _msgqueue_configure_receive(ctx: Context, args: Args, caps: Caps) -> tuple[int, ...]:
    """msgqueue_configure_receive (msgqueue.c)."""
    q = _queue(caps)
    thres, delay = args[1], args[2]
    if delay != MSGQUEUE_UNCHANGED:
        return (Error.UNIMPLEMENTED,)
    special = (MSGQUEUE_THRESHOLD_MAXIMUM, MSGQUEUE_UNCHANGED)
    if thres == 0 or (thres > q.depth and thres not in special):
        return (Error.ARGUMENT_INVALID,)
    if thres == MSGQUEUE_THRESHOLD_MAXIMUM:
        q.configure_receive(None)
    elif thres != MSGQUEUE_UNCHANGED:
        q.configure_receive(thres)
    return (Error.OK,)


CPU_INDEX_INVALID = 0xFFFF


@native("vcpu_set_affinity")
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
        return (Error.ARGUMENT_INVALID,)
    err, cap = ctx.cspace.lookup(cap_id, "thread", rights)
    if cap is None:
        return (err,)
    assert isinstance(cap.obj, Thread)
    cap.obj.affinity = affinity
    return (Error.OK,)


@native("vcpu_run")
def _vcpu_run(ctx: Context, args: Args, caps: Caps) -> tuple[int, ...]:
    """vcpu_run (hyp/vm/vcpu_run/src/vcpu_run.c; docs/real-gunyah.md section
    13): a secondary's vCPU, run by its owner on the calling CPU until it
    blocks (model.vcpu_run); before its VM starts it reads as powered off."""
    thread = caps[0].obj
    assert isinstance(thread, Thread)
    if thread.runner is None:
        return (Error.OK, POWERED_OFF, 0, 0, 0)
    return thread.runner.run(args[1], args[2], args[3])


@native("memextent_donate")
def _memextent_donate(ctx: Context, args: Args, caps: Caps) -> tuple[int, ...]:
    """memextent/src/hypercalls.c: the donation type picks which capability
    is looked up first (the child's, or the sender's for a sibling)."""
    kind, source, dest = args[0] & 0xFF, args[1], args[2]
    donate = 1 << cs.RIGHTS["memextent"]["donate"]
    if kind > 2:
        return (Error.ARGUMENT_INVALID,)
    first = {0: dest, 1: source, 2: source}[kind]
    err, cap = ctx.cspace.lookup(first, "memextent", donate)
    return (err if cap is None else Error.UNIMPLEMENTED,)




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
E = Error
precheck("vcpu_configure", (1, ~VCPU_OPTIONS_KNOWN & MASK64, E.ARGUMENT_INVALID))
precheck("vcpu_poweron", (3, ~_bits(0, 1) & MASK64, E.ARGUMENT_INVALID))
precheck("vcpu_poweroff", (1, ~_bits(0) & MASK64, E.ARGUMENT_INVALID))
precheck("vpm_group_configure", (1, ~_bits(0) & MASK64, E.UNIMPLEMENTED))
precheck("addrspace_map", (3, MAPPING_ATTRS_RES0, E.ARGUMENT_INVALID),
         (4, MAP_FLAGS_RES0, E.ARGUMENT_INVALID))
precheck("addrspace_unmap", (3, MAP_FLAGS_RES0, E.ARGUMENT_INVALID))
precheck("addrspace_update_access", (3, ACCESS_ATTRS_RES0, E.ARGUMENT_INVALID),
         (4, MAP_FLAGS_RES0, E.ARGUMENT_INVALID))
precheck("memextent_modify", (1, MODIFY_RES0, E.ARGUMENT_INVALID))
precheck("memextent_donate", (0, MODIFY_RES0, E.ARGUMENT_INVALID))  # fmt: skip
