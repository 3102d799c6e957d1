"""Types of the compiled serving loop (_mailbox.c)."""

from collections.abc import Callable, Sequence
from typing import Any

def serve(
    mailboxes: Any,
    boxes: Sequence[int],
    handle: Callable[..., Any],
    act: Callable[..., Any],
    other: Callable[..., Any],
    ring: Any,
    count: Any,
    stop: Any,
    poll: float,
    wake: float,
    pending: list[int],
    irqs: Callable[[], int],
    /,
) -> None: ...
