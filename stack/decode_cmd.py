"""``glucobridge decode KIND HEX``: decode one GLS characteristic value and print it as JSON.

Useful against a capture from a real meter (nRF Connect, btmon, an HCI log): paste the
value's hex and read what the bridge would make of it. Bad input exits with status 2 and a
one-line reason on stderr, e.g. ``Error: flags need 17 bytes, got 15``.
"""

from __future__ import annotations

import json
import string

import click

from device.gls import GlsError
from device.gls.json import DECODERS, decode_to_json

EXIT_BAD_INPUT = 2  # the status click itself uses for bad arguments
# Separators captures come with: "13 1e 00", "13:1e:00", "13-1E-00" (nRF Connect), "0x131e00".
_SEPARATORS = str.maketrans("", "", string.whitespace + ":-")


class BadInput(click.ClickException):
    """One line on stderr, exit status 2."""

    exit_code = EXIT_BAD_INPUT


def parse_hex(text: str) -> bytes:
    """The bytes of a hex dump, ignoring spaces, colons, dashes and a leading ``0x``."""
    cleaned = text.translate(_SEPARATORS)
    if cleaned[:2].lower() == "0x":
        cleaned = cleaned[2:]
    try:
        return bytes.fromhex(cleaned)
    except ValueError:
        raise BadInput(f"HEX is not a whole number of hex bytes: {text!r}") from None


@click.command("decode")
# KIND is checked by hand, not with click.Choice, so a wrong one is a one-line error too.
@click.argument("kind", metavar="KIND")
@click.argument("hex_value", metavar="HEX")
def decode(kind: str, hex_value: str) -> None:
    """Decode HEX as a Glucose Profile KIND value and print one JSON object.

    \b
    KIND is the characteristic: measurement (0x2A18), context (0x2A34),
    feature (0x2A51) or racp (0x2A52, requests and responses).
    Example: glucobridge decode measurement 131e00e2070914051b075cfe6fb0f1
    """
    if kind not in DECODERS:
        raise BadInput(f"KIND must be one of {', '.join(sorted(DECODERS))}; got {kind!r}")
    data = parse_hex(hex_value)
    try:
        result = decode_to_json(kind, data)
    except GlsError as exc:
        raise BadInput(str(exc)) from exc
    click.echo(json.dumps(result))
