"""Types of the vCPU's compiled trap hook (_vcpu.c)."""

from collections.abc import Callable
from typing import Any

class Hook:
    callback: int
    data: int
    error: BaseException | None
    def __init__(
        self,
        functions: tuple[int | None, int | None, int | None, int | None] | list[int | None],
        ids: tuple[int, int],
        array: Any,
        handle: Callable[..., Any],
        record: Callable[[Any], Any],
        act: Callable[[Any], Any],
        other: Callable[[int], Any],
    ) -> None: ...
