"""The resource manager: the program at the other end of a VM's message
queues that answers its RPC (VM queries, and, given a hypervisor and a parcel
service, secondary VMs' life cycle), as quic/gunyah-resource-manager does. It
sees the VM only through the queues' messages, and the hypervisor only
through `Hyp`."""

from .hyp import Hyp
from .link import Link
from .server import HLOS, ResourceManager, Vm

__all__ = ["HLOS", "Hyp", "Link", "ResourceManager", "Vm"]
