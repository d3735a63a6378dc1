"""One intake for every source (DESIGN.md, "Sources and one intake"): validation against
the contract's schema (`decode`) and the one writer of readings (`writer`), which ingest's
workers and the API's doors (imports, uploads, FHIR submissions) all call."""

from core.intake.decode import (
    DecodedBatch,
    Rejected,
    decode_bridge_message,
    decode_items,
    describe,
)
from core.intake.identity import held_identity, instant_key, reading_identity
from core.intake.writer import (
    BatchOutcome,
    place_bridge_batches,
    unplaceable_letter,
    write,
    write_isolating_bad_batches,
)

__all__ = [
    "BatchOutcome",
    "DecodedBatch",
    "Rejected",
    "decode_bridge_message",
    "decode_items",
    "describe",
    "held_identity",
    "instant_key",
    "place_bridge_batches",
    "reading_identity",
    "unplaceable_letter",
    "write",
    "write_isolating_bad_batches",
]
