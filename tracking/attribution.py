"""Served-item tokens: the shop's proof that it showed a recommended product to a visit.

Whoever serves a recommendation list (the product page, /api/recommendations/, similar items) gives
each item a token, an HMAC under the SECRET_KEY over (visit, model version, product, source). The
browser sends it back with the item's impression and click events; the events API keeps the
event's model version and source only when the token is valid for that visit. Serving writes
nothing (the token is recomputed, not looked up), and nobody without the key can attribute an
event to a list the shop did not serve to that visit, so a never-served model version gets no
impressions or clicks at all.
"""
from __future__ import annotations

import functools
import hashlib
import hmac

from django.conf import settings

SALT = b"tracking.served-item"
# 128 bits of the SHA-256 HMAC: unforgeable, and short enough to ride on every served item.
TOKEN_LENGTH = 32
# Where a recommendation list is shown; an event naming one of these (or a model version) claims
# to come from a served list, and needs a token (or a trusted client) to keep the claim.
RECOMMENDATION_SOURCES = frozenset({"recommended", "similar"})


def is_recommendation_source(source: str) -> bool:
    """A recommendation source: "recommended", "similar", or one of an experiment's arms
    ("recommended-x3-7": surface, experiment, arm; recommendations.serving.arm_source). The token
    signs the whole source, so an event keeps its arm only with the token of that arm's list."""
    return source in RECOMMENDATION_SOURCES or source.split("-", 1)[0] in RECOMMENDATION_SOURCES


@functools.lru_cache(maxsize=8)
def _keys(secret: str, fallbacks: tuple[str, ...]) -> tuple[bytes, ...]:
    # Django's salted_hmac derives its key the same way; here once per secret, not per item.
    return tuple(hashlib.sha256(SALT + key.encode()).digest() for key in (secret, *fallbacks))


def _current_keys() -> tuple[bytes, ...]:
    return _keys(settings.SECRET_KEY, tuple(getattr(settings, "SECRET_KEY_FALLBACKS", ())))


def _message(visit: str, model_version: str, product_id: int, source: str) -> bytes:
    # ``visit`` is the uuid's canonical text; the free-text version is length-prefixed, so no two
    # tuples share a message.
    return f"{visit}|{len(model_version)}:{model_version}|{int(product_id)}|{source}".encode()


def _sign(key: bytes, message: bytes) -> str:
    return hmac.digest(key, message, "sha256").hex()[:TOKEN_LENGTH]


def served_token(visit_uuid, model_version: str | None, product_id: int, source: str) -> str:
    """The token of one served item; "" without a visit (a list served to nobody in particular
    cannot be attributed)."""
    if not visit_uuid:
        return ""
    return _sign(_current_keys()[0], _message(str(visit_uuid).lower(), model_version or "", product_id, source or ""))


def served_token_checker(visit_uuid):
    """``check(token, model_version, product_id, source) -> bool`` for the items of one visit: true
    when ``token`` was issued by this shop for exactly this visit, version, product and source.
    The keys (SECRET_KEY, then SECRET_KEY_FALLBACKS, so a key rotation does not void the tokens of
    open pages) and the visit's text are prepared once for a whole batch."""
    keys = _current_keys()
    visit = str(visit_uuid).lower() if visit_uuid else ""

    def check(token, model_version: str | None, product_id: int, source: str) -> bool:
        if not visit or not token or not isinstance(token, str) or len(token) != TOKEN_LENGTH:
            return False
        message = _message(visit, model_version or "", product_id, source or "")
        return any(hmac.compare_digest(_sign(key, message), token) for key in keys)

    return check


def served_token_valid(token, visit_uuid, model_version: str | None, product_id: int, source: str) -> bool:
    """``served_token_checker`` for a single item."""
    return served_token_checker(visit_uuid)(token, model_version, product_id, source)
