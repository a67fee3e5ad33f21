"""Which arm of an experiment a visit sees: a stable hash of the experiment's salt and the visit id,
mapped to [0, 1) and cut by the arms' cumulative traffic shares.

Sticky (the same visit always gets the same arm, in every process, with no stored state),
independent between experiments (each has its own random salt, so being in arm 0 of one experiment
says nothing about another) and uniform (blake2b's output bits are indistinguishable from random).
Standard library only: web workers import this on every request.
"""
from __future__ import annotations

import bisect
import hashlib
import secrets
from collections.abc import Iterable, Sequence

from recommendations.experiments.validation import check_shares

_SCALE = float(2**64)


def new_salt() -> str:
    """A fresh random salt for a new experiment (32 hex characters, 128 bits)."""
    return secrets.token_hex(16)


def unit_hash(visit_id: str, salt: str) -> float:
    """The visit's position in [0, 1) for this salt: the first 64 bits of blake2b(salt, visit id)."""
    if not isinstance(visit_id, str) or not visit_id:
        raise ValueError(f"visit_id must be a non-empty string, got {visit_id!r}")
    if not isinstance(salt, str) or not salt:
        raise ValueError(f"salt must be a non-empty string, got {salt!r}")
    salt_bytes = salt.encode("utf-8")
    # The salt's length goes first so that salt "ab" + visit "c" and salt "a" + visit "bc" differ.
    message = len(salt_bytes).to_bytes(4, "big") + salt_bytes + visit_id.encode("utf-8")
    digest = hashlib.blake2b(message, digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


def _cumulative(shares: Sequence[float]) -> list[float]:
    cumulative, total = [], 0.0
    for share in check_shares(shares):
        total += share
        cumulative.append(total)
    cumulative[-1] = 1.0  # rounding: the sum may end a hair below 1.0
    return cumulative


def _arm(position: float, cumulative: list[float]) -> int:
    return bisect.bisect_right(cumulative, position)


def arm_for(visit_id: str, salt: str, shares: Sequence[float]) -> int:
    """The index of the arm this visit belongs to; ``shares`` are the arms' traffic shares
    (positive, normalised here, so ``[1, 1]`` and ``[0.5, 0.5]`` are the same split)."""
    return _arm(unit_hash(visit_id, salt), _cumulative(shares))


def arms_for(visit_ids: Iterable[str], salt: str, shares: Sequence[float]) -> list[int]:
    """``arm_for`` of many visits (the shares checked once): the simulation's assignment."""
    cumulative = _cumulative(shares)
    return [_arm(unit_hash(visit_id, salt), cumulative) for visit_id in visit_ids]
