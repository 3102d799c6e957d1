"""The hypervisor's services, each a module here that registers what it
answers (`registry`): the SMCCC services by owner (`arch`, `std_hyp`,
`vendor_hyp`, `psci`, `trng`, `kvm`) and the native table's handlers
(`native`). Importing this package imports every module in it, so every
registration is checked when gunyah.model is imported, and a new service
is one new module. A persona lists the services its VM has by name
(model.personas).
"""

import importlib
import pkgutil

from .registry import (
    NATIVE_HANDLERS,
    NATIVE_PRECHECKS,
    SERVICES,
    RegistrationError,
    Service,
    check_services,
)

MODULES = tuple(
    importlib.import_module(f"{__name__}.{m.name}")
    for m in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name)
    if m.name != "registry"
)

__all__ = [
    "MODULES", "NATIVE_HANDLERS", "NATIVE_PRECHECKS", "SERVICES", "RegistrationError",
    "Service", "check_services",
]  # fmt: skip
