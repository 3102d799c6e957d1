"""The hypervisor side: an executable model of Gunyah's dispatcher (`hypervisor`),
the services it dispatches to (`services`), the VMs and objects it holds
(`vms`), and the hypervisors it can play (`personas`, data only)."""

from .hypervisor import CallResult, Hypervisor, call_once, describe_call
from .personas import DEFAULT_PERSONA, PERSONAS, PERSONAS_BY_NAME, Persona, get_persona
from .services import SERVICES, RegistrationError, Service
from .vms import HypError, Vms

__all__ = [
    "DEFAULT_PERSONA", "PERSONAS", "PERSONAS_BY_NAME", "SERVICES",
    "CallResult", "HypError", "Hypervisor", "Persona", "RegistrationError", "Service", "Vms",
    "call_once", "describe_call", "get_persona",
]  # fmt: skip
