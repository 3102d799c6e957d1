"""The vCPU guest's memory as the hypervisor model reaches it (GuestMemory):
by virtual address, with the permissions the guest's mappings give.

The vCPU's guests run with the MMU off (SCTLR_EL1.M clear, as the vCPU
starts them), so a virtual address is the physical one and the engine's own
mappings carry the permissions. A guest that turns its MMU on gets every copy
refused, as an address its translation refuses would be: this vCPU has no
stage-1 walk.
"""

from __future__ import annotations

from unicorn import UC_PROT_READ, UC_PROT_WRITE
from unicorn import arm64_const as a64
from unicorn.unicorn_py3.unicorn import Uc, UcError

SCTLR_EL1 = (1, 0, 3, 0, 0)  # CRn, CRm, op0, op1, op2
SCTLR_M = 1


class EngineMemory:
    def __init__(self, uc: Uc) -> None:
        self.uc = uc

    def _allowed(self, va: int, size: int, prot: int) -> bool:
        """Whether every byte of [va, va + size) is mapped with `prot`."""
        if self.uc.reg_read(a64.UC_ARM64_REG_CP_REG, SCTLR_EL1) & SCTLR_M:
            return False
        end = va + size
        if va < 0 or end > 1 << 64:
            return False
        for begin, last, perms in sorted(self.uc.mem_regions()):
            if va >= end:
                break
            if begin <= va <= last:
                if perms & prot != prot:
                    return False
                va = last + 1
        return va >= end

    def read(self, va: int, size: int) -> bytes | None:
        if not self._allowed(va, size, UC_PROT_READ):
            return None
        try:
            return bytes(self.uc.mem_read(va, size))
        except UcError:
            return None

    def write(self, va: int, data: bytes) -> bool:
        if not self._allowed(va, len(data), UC_PROT_WRITE):
            return False
        try:
            self.uc.mem_write(va, data)
        except UcError:
            return False
        return True
