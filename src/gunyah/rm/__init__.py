"""The resource manager: the program at the other end of a VM's message
queues that answers its RPC (VM queries today), as quic/gunyah-resource-manager
does. It sees the VM only through the queues' messages."""

from .link import Link
from .server import HLOS, ResourceManager, Vm

__all__ = ["HLOS", "Link", "ResourceManager", "Vm"]
