"""What a native hypercall's handler sees beyond its arguments: the calling
VM (whose cspace its capabilities are looked up in) and vCPU, and that VM's
memory as the hypervisor reaches it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..abi import cspace as cs
from ..conduit import GuestMemory
from .vms import Cspace, Vm


@dataclass
class Context:
    """What a handler sees beyond its arguments: the calling VM and vCPU."""

    vm: Vm  # the VM whose vCPU made the call: its caps are the ones looked up
    api_info: int
    flags: tuple[int, int, int]
    cores: int  # physical CPUs (platform_cpu_exists)
    vcpu: Callable[[], int] = lambda: 0  # the calling vCPU
    trace_flags: int = 0
    prng_windows: dict[int, tuple[float, int]] = field(default_factory=dict)
    memory: GuestMemory | None = None  # the calling VM's, through its own translation

    @property
    def cspace(self) -> Cspace:
        return self.vm.cspace


# What a handler is given: the calling VM and vCPU, the call's arguments at
# their types' widths, and the caps its lookups found
Args = list[int]
Caps = list[cs.Cap]
Handler = Callable[[Context, Args, Caps], tuple[int, ...]]
