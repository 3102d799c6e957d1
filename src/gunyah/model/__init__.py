"""The hypervisor side: an executable model of Gunyah's dispatcher (`hypervisor`)
and the hypervisors it can play (`personas`, data only)."""

from .hypervisor import (
    FAST32_HANDLERS,
    VENDOR_SERVICES,
    CallResult,
    Fast32,
    Hypervisor,
    call_once,
    describe_call,
)
from .personas import DEFAULT_PERSONA, PERSONAS, PERSONAS_BY_NAME, Persona, get_persona

__all__ = [
    "DEFAULT_PERSONA", "FAST32_HANDLERS", "PERSONAS", "PERSONAS_BY_NAME",
    "VENDOR_SERVICES",
    "CallResult", "Fast32", "Hypervisor", "Persona", "call_once", "describe_call",
    "get_persona",
]  # fmt: skip
