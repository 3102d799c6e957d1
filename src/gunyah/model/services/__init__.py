"""The hypervisor's services, each a module that registers what it answers
(`registry`): the SMCCC services by owner (`arch`, `std_hyp`, `vendor_hyp`,
`psci`, `trng`, `kvm`) and the native table's handlers (`native`).
Importing this package imports them all, so every registration is checked
when gunyah.model is imported. A persona lists the services its VM has by
name (model.personas); adding one is a module here that registers it.
"""

from . import arch, kvm, native, psci, std_hyp, trng, vendor_hyp
from .registry import (
    NATIVE_HANDLERS,
    NATIVE_PRECHECKS,
    SERVICES,
    RegistrationError,
    Service,
    check_services,
)

__all__ = [
    "NATIVE_HANDLERS", "NATIVE_PRECHECKS", "SERVICES", "RegistrationError", "Service",
    "arch", "check_services", "kvm", "native", "psci", "std_hyp", "trng", "vendor_hyp",
]  # fmt: skip
