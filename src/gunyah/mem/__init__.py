"""Guest memory as the hypervisor reaches it: the guest's own stage-1
translation (VMSAv8-64), followed through its page tables in its RAM."""

from .stage1 import Translation, translate

__all__ = ["Translation", "translate"]
