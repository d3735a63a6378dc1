"""The GLS codec's exceptions: one root, typed subclasses that carry their fields.

Every decoder in :mod:`device.gls` raises only :class:`GlsError` subclasses for bad input,
so a caller (the bridge's notification handler, the simulator's RACP handler) can catch the
root, keep the bytes in its dead-letter log, and carry on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from device.gls.racp import ResponseCode


class GlsError(ValueError):
    """Root of every error the GLS codec raises for bytes or values that do not fit."""


class LengthError(GlsError):
    """The payload is shorter or longer than its flags (or its fixed layout) say.

    ``what`` names what fixes the length, e.g. ``"flags"``; ``at_least`` is set when the
    length could not be worked out because even the fixed header is missing.
    """

    def __init__(self, expected: int, got: int, what: str, *, at_least: bool = False) -> None:
        self.expected = expected
        self.got = got
        self.what = what
        self.at_least = at_least
        bound = "at least " if at_least else ""
        super().__init__(f"{what} need {bound}{expected} bytes, got {got}")


class ReservedValueError(GlsError):
    """A field holds a value the specification reserves for future use."""

    def __init__(self, field: str, value: int) -> None:
        self.field = field
        self.value = value
        super().__init__(f"{field} {value} (0x{value:x}) is reserved for future use")


class OutOfRangeError(GlsError):
    """A value lies outside the range its field can hold or the specification allows."""

    def __init__(self, field: str, value: object, minimum: object, maximum: object) -> None:
        self.field = field
        self.value = value
        self.minimum = minimum
        self.maximum = maximum
        super().__init__(f"{field} {value} is out of range {minimum}..{maximum}")


class NotRepresentableError(GlsError):
    """A number cannot be encoded exactly in the wire format asked for (e.g. SFLOAT)."""

    def __init__(self, field: str, value: object, reason: str) -> None:
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(f"{field} {value} cannot be encoded exactly: {reason}")


class InconsistentFieldsError(GlsError):
    """Fields that travel together (one flag bit, one byte) were given only in part."""

    def __init__(self, fields: tuple[str, ...], reason: str) -> None:
        self.fields = fields
        self.reason = reason
        super().__init__(f"{' / '.join(fields)}: {reason}")


class UnknownDateTimeError(GlsError):
    """A Date Time field is 0 ("not known"), so no calendar instant can be formed from it."""

    def __init__(self, field: str) -> None:
        self.field = field
        super().__init__(f"date time {field} is 0 (not known)")


class RacpRequestError(GlsError):
    """A Record Access Control Point request a server must refuse.

    ``response_code`` is the RACP response the server owes the client for it, so the
    simulator can answer ``06 00 <request_op_code> <response_code>`` without re-deciding.
    """

    def __init__(self, request_op_code: int, response_code: ResponseCode, reason: str) -> None:
        self.request_op_code = request_op_code
        self.response_code = response_code
        self.reason = reason
        super().__init__(f"RACP op code {request_op_code}: {reason}")
