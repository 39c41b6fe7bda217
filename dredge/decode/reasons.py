"""Why a record is dead-lettered: the closed set of reasons, and the error that carries one.

The reasons are also the values of the ``reason`` label of
``dredge_decode_dead_letters_total``, so the set stays small and fixed.
"""

from __future__ import annotations

from typing import Literal, get_args

from dredge.errors import DecodeError

Reason = Literal[
    "inflated_too_large",  # the gzip payload inflates past DecodeConfig.max_inflated_bytes
    "corrupt_gzip",  # zlib refused the stream (bad header, bad data, bad CRC)
    "truncated_gzip",  # the gzip stream ends before its trailer
    "bad_cwl_json",  # the inflated payload is not JSON
    "bad_cwl_schema",  # JSON, but not the shape of a CloudWatch Logs subscription message
    "unknown_cwl_message_type",  # neither DATA_MESSAGE nor CONTROL_MESSAGE
    "kpl_bad_key_index",  # a valid aggregate whose user record points outside the key tables
]

REASONS: tuple[Reason, ...] = get_args(Reason)


class EnvelopeError(DecodeError):
    """One payload cannot be decoded; ``reason`` says why, in one of ``REASONS``."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason: Reason = reason
