"""Text fields as the API accepts them: no control characters (PostgreSQL refuses NUL in
text, and a name or label has no use for the others), bounded lengths."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

# Anything but the C0 controls and DEL.
PRINTABLE = r"^[^\x00-\x1f\x7f]+$"
# RFC 5321 caps an address at 254 octets in practice; one @, no spaces or controls.
EMAIL_PATTERN = r"^[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+$"
MAX_EMAIL = 254
MAX_NAME = 200
MAX_NOTE = 1000

Email = Annotated[
    str,
    Field(
        pattern=EMAIL_PATTERN,
        max_length=MAX_EMAIL,
        examples=["wang.fang@example.org"],
    ),
]
Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME, pattern=PRINTABLE)]
Note = Annotated[str, Field(min_length=1, max_length=MAX_NOTE, pattern=PRINTABLE)]
