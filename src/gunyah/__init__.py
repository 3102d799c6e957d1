"""gunyah: the Gunyah hypervisor's guest-identification ABI, both sides of SMCCC.

The public names: the codecs (`FunctionId`, `CallUid`, `HypIdentify`), the
hypervisor model (`Hypervisor`, `Persona`, `PERSONAS`), the seam between them
(`Conduit`), what a trap asks for (`classify`), and the guest driver
(`identify`, `Identification`).
"""

from .abi import (
    CALL_UID,
    HYP_IDENTIFY,
    HYPERCALLS,
    KNOWN_UIDS,
    CallUid,
    HypIdentify,
    VendorHypCall,
    describe_function_id,
)
from .conduit import Conduit, Results32, Results64
from .guest import GuestProfile, Identification, get_uid, hyp_identify, identify
from .model import PERSONAS, Hypervisor, Persona, get_persona
from .smccc import FunctionId, make_function_id, uid_to_uuid, uuid_to_uid
from .trap import TrapCall, classify, describe_hvc_imm

__all__ = [
    "CALL_UID",
    "HYP_IDENTIFY",
    "HYPERCALLS",
    "KNOWN_UIDS",
    "PERSONAS",
    "CallUid",
    "Conduit",
    "FunctionId",
    "GuestProfile",
    "HypIdentify",
    "Hypervisor",
    "Identification",
    "Persona",
    "Results32",
    "Results64",
    "TrapCall",
    "VendorHypCall",
    "classify",
    "describe_function_id",
    "describe_hvc_imm",
    "get_persona",
    "get_uid",
    "hyp_identify",
    "identify",
    "make_function_id",
    "uid_to_uuid",
    "uuid_to_uid",
]
__version__ = "0.1.0"
