"""Register layouts declared once, as data, the way the hypervisor's `.tc`
files declare its bitfields: a field's name, its lowest bit and its width.

Encoding, decoding, the JSON view and the "unknown bits" report all derive
from one declaration; no other module shifts or masks an ABI field by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Field:
    """Bits lsb .. lsb+width-1 of a word; `flag` fields read as booleans.
    A `reserved` field is one the ABI defines as zero: it decodes like any
    other, so a set bit there stays visible."""

    name: str
    lsb: int
    width: int = 1
    flag: bool = False
    reserved: bool = False
    # the largest value the field holds: computed once, as every trap's
    # decoding reads it
    top: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "top", (1 << self.width) - 1)

    @property
    def msb(self) -> int:
        return self.lsb + self.width - 1

    @property
    def mask(self) -> int:
        """The field's bits in place."""
        return self.top << self.lsb

    def get(self, word: int) -> int:
        return word >> self.lsb & self.top


def flag(name: str, bit: int) -> Field:
    return Field(name, bit, 1, flag=True)


class Bitfield:
    """A word of `bits` bits and its named fields; bits no field names are
    unknown, and reported as such rather than dropped."""

    def __init__(self, name: str, bits: int, *fields: Field) -> None:
        self.name = name
        self.bits = bits
        self.fields = {f.name: f for f in fields}
        if len(self.fields) != len(fields):
            raise ValueError(f"{name}: a field name is declared twice")
        used = 0
        for f in fields:
            if f.width < 1 or f.lsb < 0 or f.msb >= bits:
                raise ValueError(f"{name}.{f.name}: bits {f.msb}:{f.lsb} outside the word")
            if used & f.mask:
                raise ValueError(f"{name}.{f.name}: overlaps another field")
            used |= f.mask
        self.named_mask = used
        self.word_mask = (1 << bits) - 1

    def __getitem__(self, name: str) -> Field:
        return self.fields[name]

    def get(self, word: int, name: str) -> int:
        return self.fields[name].get(word)

    def encode(self, values: Mapping[str, int | bool]) -> int:
        """The word with these fields set (the rest zero); a value that does
        not fit its field, or a field the layout lacks, is refused."""
        word = 0
        for name, value in values.items():
            f = self.fields.get(name)
            if f is None:
                raise ValueError(f"{self.name} has no field {name!r}")
            v = int(value)
            if not 0 <= v <= f.top:
                raise ValueError(f"{name} {v} is outside 0..{f.top} "
                                 f"({self.name} bits {f.msb}:{f.lsb})")  # fmt: skip
            word |= v << f.lsb
        return word

    def decode(self, word: int) -> dict[str, int | bool]:
        """Every named field's value (booleans for flags)."""
        self.check(word)
        return {n: bool(f.get(word)) if f.flag else f.get(word) for n, f in self.fields.items()}

    def check(self, word: int) -> None:
        if not 0 <= word <= self.word_mask:
            raise ValueError(f"{self.name} {word:#x} does not fit in {self.bits} bits")

    def set_flags(self, word: int) -> list[str]:
        """The flag fields set in a word, lowest bit first."""
        ordered = sorted(self.fields.values(), key=lambda f: f.lsb)
        return [f.name for f in ordered if f.flag and not f.reserved and f.get(word)]

    def unknown_bits(self, word: int) -> list[int]:
        """Set bits no field names, lowest first."""
        rest = word & ~self.named_mask & self.word_mask
        return [b for b in range(self.bits) if rest >> b & 1]

    def reserved_value(self, word: int) -> int:
        """The bits of the reserved fields, in place."""
        return word & sum(f.mask for f in self.fields.values() if f.reserved)
