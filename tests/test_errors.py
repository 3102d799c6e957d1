"""Gunyah's error codes are one enumeration, each value the hypervisor's."""

from __future__ import annotations

import errno

from hypothesis import given
from hypothesis import strategies as st

from gunyah.abi import cspace
from gunyah.abi.errors import GUNYAH_ERRORS, Error, error_name, linux_errno

# Written out from quic/gunyah-hypervisor 36ca3a2, file by file, as the
# `error` enumeration and its `extend error enumeration` blocks spell them.
SOURCE: dict[str, dict[str, int]] = {
    "hyp/core/base/types.tc": {
        "OK": 0, "UNIMPLEMENTED": -1, "RETRY": -2,
        "ARGUMENT_INVALID": 1, "ARGUMENT_SIZE": 2, "ARGUMENT_ALIGNMENT": 3,
        "NOMEM": 10, "NORESOURCES": 11,
        "ADDR_OVERFLOW": 20, "ADDR_UNDERFLOW": 21, "ADDR_INVALID": 22,
        "DENIED": 30, "BUSY": 31, "IDLE": 32, "FAILURE": 36,
    },
    "hyp/interfaces/object/templates/object.tc.tmpl": {
        "OBJECT_STATE": 33, "OBJECT_CONFIG": 34, "OBJECT_CONFIGURED": 35,
    },
    "hyp/interfaces/virq/virq.tc": {"VIRQ_BOUND": 40, "VIRQ_NOT_BOUND": 41},
    "hyp/interfaces/cspace/templates/cspace.tc.tmpl": {
        "CSPACE_CAP_NULL": 50, "CSPACE_CAP_REVOKED": 51, "CSPACE_WRONG_OBJECT_TYPE": 52,
        "CSPACE_INSUFFICIENT_RIGHTS": 53, "CSPACE_FULL": 54,
    },
    "hyp/ipc/msgqueue/msgqueue.tc": {"MSGQUEUE_EMPTY": 60, "MSGQUEUE_FULL": 61},
    "hyp/interfaces/log/log.tc": {
        "STRING_TRUNCATED": 90, "STRING_REACHED_END": 91, "STRING_INVALID_FORMAT": 92,
        "STRING_MISSING_PLACEHOLDER": 93, "STRING_MISSING_ARGUMENT": 94,
    },
    "hyp/interfaces/allocator/allocator.tc": {
        "ALLOCATOR_RANGE_OVERLAPPING": 100, "ALLOCATOR_MEM_INUSE": 101,
    },
    "hyp/interfaces/memdb/memdb.tc": {"MEMDB_EMPTY": 110, "MEMDB_NOT_OWNER": 111},
    "hyp/interfaces/memextent/memextent.tc": {
        "MEMEXTENT_MAPPINGS_FULL": 120, "MEMEXTENT_TYPE": 121,
    },
    "hyp/interfaces/pgtable/pgtable.tc": {"EXISTING_MAPPING": 200},
}  # fmt: skip


def test_every_code_is_the_hypervisors_and_none_is_missing() -> None:
    expected = {name: code for names in SOURCE.values() for name, code in names.items()}
    assert {e.name: int(e) for e in Error} == expected


def test_the_seed_era_names_are_of_codes_the_enumeration_has() -> None:
    """The short names the driver prints name codes of the one enumeration."""
    assert {e.code for e in GUNYAH_ERRORS} <= {int(e) for e in Error}
    assert error_name(Error.CSPACE_WRONG_OBJECT_TYPE) == "CSPACE_WRONG_OBJ_TYPE"


def test_codes_the_seed_era_driver_lacks_get_the_hypervisors_name() -> None:
    assert error_name(33) == "OBJECT_STATE"  # once missing from one of three tables
    assert linux_errno(33) == -errno.EINVAL  # gh_remap_error's default branch
    assert error_name(200) == "EXISTING_MAPPING"


def test_capability_lookup_errors_are_the_enumerations() -> None:
    assert cspace.ERROR_OBJECT_STATE is Error.OBJECT_STATE
    assert cspace.ERROR_CAP_REVOKED is Error.CSPACE_CAP_REVOKED
    assert cspace.ERROR_INSUFFICIENT_RIGHTS is Error.CSPACE_INSUFFICIENT_RIGHTS


@given(st.integers(-(2**40), 2**40))
def test_any_code_has_a_name_and_an_errno(code: int) -> None:
    name = error_name(code)
    assert name and (code in {int(e) for e in Error}) != name.startswith("unknown(")
    assert linux_errno(code) < 0 or code == 0
