"""Webhook signatures: HMAC-SHA256 over "{timestamp}.{body}" with the endpoint's secret.

The header reads `Glucobridge-Signature: t=<unix seconds>,v1=<hex digest>`. The timestamp
is signed too, so a receiver that rejects old timestamps is safe from replays. Receivers
verify with `verify` (or the same three lines in their own language).
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "Glucobridge-Signature"
# A receiver accepts a signature this much older or newer than its own clock: room for
# clock skew and a slow retry, too little for a captured request to be replayed later.
DEFAULT_TOLERANCE_S = 300


class SignatureError(ValueError):
    """The request was not signed with this secret, or not recently."""


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(
    secret: str,
    header: str,
    body: bytes,
    *,
    now: float | None = None,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> None:
    """Raise SignatureError unless `header` signs `body` with `secret` within the tolerance."""
    try:
        fields = dict(part.split("=", 1) for part in header.split(","))
        timestamp = int(fields["t"])
        digest = fields["v1"]
    except (KeyError, ValueError) as exc:
        raise SignatureError(f"malformed {SIGNATURE_HEADER} header") from exc
    if abs((time.time() if now is None else now) - timestamp) > tolerance_s:
        raise SignatureError("signature timestamp outside the tolerance")
    expected = sign(secret, timestamp, body).split(",v1=", 1)[1]
    if not hmac.compare_digest(expected, digest):
        raise SignatureError("signature does not match the body")
