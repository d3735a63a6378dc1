"""IEEE 11073-20601 16-bit SFLOAT, as the Glucose Profile carries concentrations.

Layout of the little-endian uint16: the top 4 bits are a signed base-10 exponent
(-8..7), the low 12 bits a signed mantissa (-2048..2047); value = mantissa x 10^exponent.
With exponent 0, five mantissas are not numbers: NaN 0x07FF, NRes ("not at this
resolution") 0x0800, +INF 0x07FE, -INF 0x0802, and 0x0801 is reserved for future use. A
receiver keeps a reserved value as what it is (:attr:`SFloatSpecial.RESERVED`, no number),
as Bluetooth specifications ask of receivers; nothing encodes one.

:class:`SFloat` keeps mantissa and exponent exactly as sent, so 111e-5 and 1110e-6 stay
distinct and decode -> encode is the identity; :attr:`SFloat.decimal` gives the exact value.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar

from device.gls.errors import LengthError, NotRepresentableError
from device.gls.wire import check_range

EXPONENT_MIN = -8  # 4-bit two's complement
EXPONENT_MAX = 7
MANTISSA_MIN = -2048  # 12-bit two's complement
MANTISSA_MAX = 2047
_MANTISSA_BITS = 12
_MANTISSA_MASK = (1 << _MANTISSA_BITS) - 1
_EXPONENT_MASK = 0xF
# With exponent 0 this mantissa (raw 0x0801) is reserved by IEEE 11073-20601.
_RESERVED_MANTISSA = -2047


class SFloatSpecial(enum.Enum):
    """The non-numbers an SFLOAT can carry; the value is how JSON shows it."""

    NAN = "NaN"
    NRES = "NRes"
    POSITIVE_INFINITY = "+INF"
    NEGATIVE_INFINITY = "-INF"
    RESERVED = "reserved"  # raw 0x0801: reserved for future use, no value


_SPECIAL_BY_MANTISSA: dict[int, SFloatSpecial] = {
    0x07FF: SFloatSpecial.NAN,
    -0x0800: SFloatSpecial.NRES,
    0x07FE: SFloatSpecial.POSITIVE_INFINITY,
    -0x07FE: SFloatSpecial.NEGATIVE_INFINITY,  # raw 0x0802
    _RESERVED_MANTISSA: SFloatSpecial.RESERVED,
}
_MANTISSA_BY_SPECIAL = {special: mantissa for mantissa, special in _SPECIAL_BY_MANTISSA.items()}
_FLOAT_BY_SPECIAL = {
    SFloatSpecial.NAN: float("nan"),
    SFloatSpecial.NRES: float("nan"),
    SFloatSpecial.POSITIVE_INFINITY: float("inf"),
    SFloatSpecial.NEGATIVE_INFINITY: float("-inf"),
    SFloatSpecial.RESERVED: float("nan"),
}


@dataclass(frozen=True, slots=True)
class SFloat:
    """One SFLOAT: ``mantissa x 10**exponent``, or a special value (see :attr:`special`)."""

    SIZE: ClassVar[int] = 2

    mantissa: int
    exponent: int = 0

    def __post_init__(self) -> None:
        check_range("SFLOAT mantissa", self.mantissa, MANTISSA_MIN, MANTISSA_MAX)
        check_range("SFLOAT exponent", self.exponent, EXPONENT_MIN, EXPONENT_MAX)

    # -- construction ------------------------------------------------------------------

    @classmethod
    def special_value(cls, special: SFloatSpecial) -> SFloat:
        return cls(_MANTISSA_BY_SPECIAL[special], 0)

    @classmethod
    def from_raw(cls, raw: int) -> SFloat:
        check_range("SFLOAT raw value", raw, 0, 0xFFFF)
        exponent = raw >> _MANTISSA_BITS
        mantissa = raw & _MANTISSA_MASK
        if exponent > EXPONENT_MAX:
            exponent -= 1 << 4
        if mantissa > MANTISSA_MAX:
            mantissa -= 1 << _MANTISSA_BITS
        return cls(mantissa, exponent)

    @classmethod
    def from_bytes(cls, data: bytes) -> SFloat:
        if len(data) != cls.SIZE:
            raise LengthError(cls.SIZE, len(data), "SFLOAT fields")
        return cls.from_raw(int.from_bytes(data, "little"))

    @classmethod
    def from_value(cls, value: Decimal | int | float | str, exponent: int | None = None) -> SFloat:
        """The exact SFLOAT for ``value``; raise :class:`NotRepresentableError` if none exists.

        Without ``exponent`` the shortest mantissa is chosen (``0.00111`` -> ``111e-5``).
        Meters often use a fixed exponent (``0.008`` sent as ``80e-4``); pass it to match.
        Floats go through their shortest ``repr``, so ``0.00111`` means what it reads as.
        NaN and the infinities map to the special values.
        """
        if isinstance(value, float):
            if value != value:
                return cls.special_value(SFloatSpecial.NAN)
            if value in (float("inf"), float("-inf")):
                special = (
                    SFloatSpecial.POSITIVE_INFINITY
                    if value > 0
                    else SFloatSpecial.NEGATIVE_INFINITY
                )
                return cls.special_value(special)
            number = Decimal(repr(value))
        else:
            number = Decimal(value)
        if not number.is_finite():
            raise NotRepresentableError("SFLOAT value", value, "only finite numbers encode")
        if exponent is not None:
            check_range("SFLOAT exponent", exponent, EXPONENT_MIN, EXPONENT_MAX)
            scaled = number.scaleb(-exponent)
            if scaled != scaled.to_integral_value():
                raise NotRepresentableError(
                    "SFLOAT value", value, f"not a whole multiple of 1e{exponent}"
                )
            return cls._checked(value, int(scaled), exponent)
        sign, digits, exp = number.normalize().as_tuple()
        if not isinstance(exp, int):  # unreachable: finite numbers have an int exponent
            raise NotRepresentableError("SFLOAT value", value, "only finite numbers encode")
        mantissa = int("".join(map(str, digits))) * (-1 if sign else 1)
        while exp > EXPONENT_MAX and abs(mantissa * 10) <= MANTISSA_MAX:
            mantissa *= 10
            exp -= 1
        return cls._checked(value, mantissa, exp)

    @classmethod
    def _checked(cls, value: object, mantissa: int, exponent: int) -> SFloat:
        if not EXPONENT_MIN <= exponent <= EXPONENT_MAX:
            raise NotRepresentableError("SFLOAT value", value, "exponent out of -8..7")
        if not MANTISSA_MIN <= mantissa <= MANTISSA_MAX:
            raise NotRepresentableError("SFLOAT value", value, "more than 12 bits of mantissa")
        if exponent == 0 and mantissa in _SPECIAL_BY_MANTISSA:
            raise NotRepresentableError("SFLOAT value", value, "mantissa is a special value")
        return cls(mantissa, exponent)

    # -- reading -----------------------------------------------------------------------

    @property
    def special(self) -> SFloatSpecial | None:
        """The special value this is, or None for a number."""
        if self.exponent != 0:
            return None
        return _SPECIAL_BY_MANTISSA.get(self.mantissa)

    @property
    def is_number(self) -> bool:
        return self.special is None

    @property
    def decimal(self) -> Decimal | None:
        """The exact value, or None for a special value."""
        if self.special is not None:
            return None
        return Decimal(self.mantissa).scaleb(self.exponent)

    @property
    def raw(self) -> int:
        return ((self.exponent & _EXPONENT_MASK) << _MANTISSA_BITS) | (
            self.mantissa & _MANTISSA_MASK
        )

    def __float__(self) -> float:
        special = self.special
        if special is not None:
            return _FLOAT_BY_SPECIAL[special]
        return float(Decimal(self.mantissa).scaleb(self.exponent))

    def __bytes__(self) -> bytes:
        return self.raw.to_bytes(self.SIZE, "little")

    def __str__(self) -> str:
        special = self.special
        return special.value if special is not None else str(self.decimal)
