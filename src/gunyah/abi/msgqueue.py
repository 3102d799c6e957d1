"""Message queue flags, declared once (quic/gunyah-hypervisor 36ca3a2:
hyp/interfaces/msgqueue/msgqueue.tc, msgqueue_send_flags): `push` asks the
hypervisor to raise the receiver's interrupt now, whatever the not-empty
threshold. Every other bit is unknown and must be zero."""

from __future__ import annotations

from ..bitfield import Bitfield, Field

SEND_FLAGS = Bitfield("msgqueue_send_flags", 32, Field("push", 0, flag=True))
PUSH = SEND_FLAGS.encode({"push": True})
