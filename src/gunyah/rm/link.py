"""The resource manager's end of a client VM's pair of message queues."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from .server import ResourceManager

if TYPE_CHECKING:  # the hypervisor's queue; the RM needs nothing else of the model
    from ..model.vms import Msgqueue


class Link:
    """Runs the resource manager whenever the client sends or receives: it
    takes a request from the client's send queue only when no reply of its own
    is waiting to go out, and moves its replies to the client's receive queue
    as room frees there. So a client that never receives fills both queues
    and then gets MSGQUEUE_FULL, as from the real one, and nothing grows past
    one reply. Notifications no request caused (a VM's end) wait in the RM's
    outbox and go out the same way, in the order they came. It answers at
    once (the real one took 20-50 ms); its sends and receives go through the
    queues' own `send` and `receive`, so they raise the client's interrupts
    as the hypervisor does: a reply's arrival, a request's room freed."""

    def __init__(self, server: ResourceManager, tx: Msgqueue, rx: Msgqueue) -> None:
        self.server, self.tx, self.rx = server, tx, rx
        self.pending: deque[bytes] = deque()
        tx.notify = rx.notify = server.on_outbox = self.pump

    def pump(self) -> None:
        tx, rx, pending, outbox = self.tx, self.rx, self.pending, self.server.outbox
        while True:
            while outbox:
                pending.append(outbox.popleft())
            while pending and not rx.full:
                rx.send(pending.popleft())
            if pending or not tx.messages:
                return
            pending.extend(self.server.receive(tx.receive()))
