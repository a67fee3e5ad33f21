"""Tracking services: visits, recording events, importing click logs, popularity and the training export."""
from __future__ import annotations

import json
import time
import uuid as uuid_lib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from catalog.models import Product
from catalog.selectors import product_external_ids

from .attribution import is_recommendation_source, served_token_checker
from . import db, gate
from .models import Event, EventBatchKey, EventType, Visit
from .visitors import Visitor

VISIT_SESSION_KEY = "tracking_visit"
# last_seen is written (session and database) at most this often: the 30-minute expiry is then
# exact to within a minute and a page view does not always cost a write.
VISIT_RENEW_EVERY = timedelta(seconds=60)
# Event types that make up a visit's item history (what the recommender reads and trains on).
HISTORY_EVENT_TYPES = (EventType.VIEW.value, EventType.CLICK.value)
PURCHASE_WEIGHT = 10.0
EVENT_TYPE_VALUES = frozenset(EventType.values)
# The events whose recommendation attribution a served-item token proves (tracking.attribution).
ATTRIBUTED_TYPES = frozenset({EventType.IMPRESSION.value, EventType.CLICK.value})
TRUSTED_EVENTS_PERMISSION = "tracking.record_trusted_events"


# --- Visits ------------------------------------------------------------------------------

def visit_for_visitor(visitor: Visitor) -> Visit:
    """The visit of this browser session: renewed while active, a new one after
    ``VISIT_TIMEOUT_MINUTES`` of inactivity. The id lives server-side in the browser's session."""
    state = visitor.state
    if state.visit is not None:
        return state.visit
    now = timezone.now()
    timeout = timedelta(minutes=settings.VISIT_TIMEOUT_MINUTES)
    user = visitor.user
    is_staff = visitor.is_staff
    session = visitor.session
    data = session.get(VISIT_SESSION_KEY) or {}
    visit = None
    last_seen = None
    if data:
        try:
            last_seen = datetime.fromisoformat(data["last_seen"])
            if now - last_seen <= timeout:
                visit = Visit.objects.filter(pk=data["pk"]).first()
        except (KeyError, TypeError, ValueError):
            visit = None
    if visit is None:
        if not gate.visit_may_start(visitor):  # a client that has not shown it is a browser (gate.py)
            gate.visit_refused(visitor)
            raise gate.VisitDeferred()
        visit = Visit.objects.create(
            started=now, last_seen=now, user=user, is_staff=is_staff, source=Visit.Source.WEB
        )
        last_seen = now
        gate.pending_record(visitor, visit)
    else:
        changes = {}
        if user is not None and visit.user_id != user.pk:
            changes["user"] = user
        if is_staff and not visit.is_staff:
            changes["is_staff"] = True  # a visit that ever had a staff user stays staff
        if now - last_seen >= VISIT_RENEW_EVERY or changes:
            changes["last_seen"] = now
            last_seen = now
        if changes:
            Visit.objects.filter(pk=visit.pk).update(**changes)
            for name, value in changes.items():
                setattr(visit, name, value)
    new_data = {"pk": visit.pk, "uuid": str(visit.uuid), "last_seen": last_seen.isoformat()}
    if new_data != data:
        session[VISIT_SESSION_KEY] = new_data
    state.visit = visit
    return visit


def visit_for_api(visit_uuid: uuid_lib.UUID | str, *, user=None) -> Visit:
    """The visit an API client names; a uuid the shop has not seen starts a new visit."""
    visit_uuid = uuid_lib.UUID(str(visit_uuid))
    is_staff = bool(user is not None and user.is_authenticated and user.is_staff)
    visit, _ = Visit.objects.get_or_create(
        uuid=visit_uuid,
        defaults={
            "source": Visit.Source.API,
            "user": user if user is not None and user.is_authenticated else None,
            "is_staff": is_staff,
        },
    )
    return visit


# --- Recording events --------------------------------------------------------------------

def _history_length(visit_id: int) -> int:
    return Event.objects.filter(visit_id=visit_id, event_type__in=HISTORY_EVENT_TYPES).count()


def event_record(
    visit: Visit,
    event_type: str,
    product: Product | int,
    *,
    source: str = "",
    position: int | None = None,
    model_version: str = "",
    user=None,
    is_staff: bool = False,
    timestamp: datetime | None = None,
) -> Event:
    """Append one event to a visit. Staff events (user or visit) are flagged and left out of
    training data and popularity."""
    if event_type not in EVENT_TYPE_VALUES:
        raise ValueError(f"unknown event type {event_type!r}")
    if position is not None and position < 0:
        raise ValueError("position must be >= 0")
    product_id = product.pk if isinstance(product, Product) else int(product)
    user = user if user is not None and user.is_authenticated else None
    return Event.objects.create(
        visit=visit,
        event_type=event_type,
        product_id=product_id,
        source=source or "",
        position=position,
        model_version=model_version or "",
        history_length=_history_length(visit.pk),
        timestamp=timestamp or timezone.now(),
        user=user,
        is_staff=bool(is_staff or visit.is_staff or (user is not None and user.is_staff)),
    )


_LABEL_MAX = {name: Event._meta.get_field(name).max_length for name in ("source", "model_version")}


def _label(value, field: str) -> str:
    """A page's own label (e.g. the ?src= of a link) is free text: cut to its column and without
    NUL, so an odd link never loses the event (PostgreSQL refuses NUL and over-long values)."""
    return str(value or "").replace("\x00", "")[: _LABEL_MAX[field]]


def event_record_for_visitor(
    visitor: Visitor, event_type, product, *, source="", position=None, model_version=""
) -> Event | None:
    """Record an event of the browser's visit (the storefront calls this for view, add_to_cart,
    remove_from_cart and purchase). A client without a visit yet (tracking.gate) keeps the event in
    its pending cookie until it shows it is a browser; None is returned then."""
    try:
        visit = visit_for_visitor(visitor)
    except gate.VisitDeferred:
        gate.event_defer(visitor, event_type, product, source=_label(source, "source"))
        return None
    return event_record(
        visit,
        event_type,
        product,
        source=_label(source, "source"),
        position=position,
        model_version=_label(model_version, "model_version"),
        user=visitor.user,
        is_staff=visitor.is_staff,
    )


# --- Event batches from clients: what the shop can vouch for, and idempotency ---------------

# Why an event of a batch was not taken as sent (the ``reason`` of the answer's ``ignored`` items).
UNTRUSTED_PURCHASE = "untrusted_purchase"  # not stored: a purchase is an order, or a trusted client's
UNVERIFIED_ATTRIBUTION = "unverified_attribution"  # stored without source and model_version


def client_is_trusted(user) -> bool:
    """A client whose events the shop counts as its own: a token with ``record_trusted_events``."""
    return bool(user is not None and user.is_authenticated and user.has_perm(TRUSTED_EVENTS_PERMISSION))


def events_screen(visit_uuid, events: Sequence[dict], *, trusted: bool) -> tuple[list[dict], list[dict]]:
    """What of a validated batch the shop keeps, and what it ignores (reported to the client).

    A trusted client's events are kept as sent and trusted. For anyone else: a purchase is not
    stored (a purchase is an order; the storefront records those itself); a recommendation claim
    (a source among RECOMMENDATION_SOURCES or a model_version) is kept only with a valid
    served-item token for this visit, else the event is stored without it; a kept impression or
    click claim is trusted (the shop served that item to that visit), every other event is not.
    Returns (events to store, each with ``trusted`` set; ``[{"index", "reason", "stored"}]``)."""
    kept, ignored = [], []
    check = None
    for index, item in enumerate(events):
        if trusted:
            kept.append({**item, "trusted": True})
            continue
        event_type = item["type"]
        if event_type == EventType.PURCHASE:
            ignored.append({"index": index, "reason": UNTRUSTED_PURCHASE, "stored": False})
            continue
        source, version = item.get("source") or "", item.get("model_version") or ""
        verified = False
        if is_recommendation_source(source) or version:
            check = check or served_token_checker(visit_uuid)
            verified = check(item.get("token"), version, item["product"], source)
            if not verified:
                item = {**item, "source": "", "model_version": ""}
                ignored.append({"index": index, "reason": UNVERIFIED_ATTRIBUTION, "stored": True})
        kept.append({**item, "trusted": verified and event_type in ATTRIBUTED_TYPES})
    return kept, ignored


@dataclass(frozen=True)
class BatchKey:
    """An event batch's idempotency key: whose (``scope``), the key, and the request's fingerprint."""

    scope: str
    key: str
    fingerprint: str


@dataclass
class BatchOutcome:
    """What a batch did: ``result`` is the answer besides the session (``count``, ``ignored``);
    ``replayed`` when it is the stored answer of an earlier request with the same key."""

    result: dict = field(default_factory=dict)
    replayed: bool = False


class BatchKeyReused(Exception):
    """The idempotency key was used for another request body within its lifetime."""


def _idempotency_ttl() -> timedelta:
    return timedelta(hours=settings.EVENTS_IDEMPOTENCY_HOURS)


_KEY_CLAIM_SQL = """
INSERT INTO tracking_eventbatchkey AS k (scope, key, fingerprint, result, created)
VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (scope, key) DO UPDATE
    SET fingerprint = EXCLUDED.fingerprint, result = EXCLUDED.result, created = EXCLUDED.created
    WHERE k.created < %s
RETURNING id
"""


def _key_claim(key: BatchKey, result: dict, now: datetime) -> BatchOutcome | None:
    """Inside the batch's transaction: record the key with its answer, or return the answer of the
    request that holds it. A parallel request with the same key waits on the unique index until
    the first commits (then sees its row) or rolls back (then claims the key itself), so a batch is
    stored once however many copies race. An expired key is taken over in the same statement."""
    with connection.cursor() as cursor:
        cursor.execute(_KEY_CLAIM_SQL, [key.scope, key.key, key.fingerprint, json.dumps(result),
                                        db.datetime_param(now), db.datetime_param(now - _idempotency_ttl())])
        if cursor.fetchone() is not None:
            return None
    held = EventBatchKey.objects.filter(scope=key.scope, key=key.key).values_list("fingerprint", "result").first()
    if held is None:  # deleted between the two statements by the expiry task: the key was old
        raise BatchKeyReused("This key is being reused after it expired; send the batch again with a new key.")
    if held[0] != key.fingerprint:
        raise BatchKeyReused("This idempotency key was already used for a different batch; use a new key per batch.")
    return BatchOutcome(held[1], replayed=True)


def event_batch_replay(key: BatchKey) -> BatchOutcome | None:
    """The stored answer of a live key with this very body (None when the key is unknown or
    expired); BatchKeyReused when the key holds another body."""
    held = (EventBatchKey.objects.filter(scope=key.scope, key=key.key, created__gte=timezone.now() - _idempotency_ttl())
            .values_list("fingerprint", "result").first())
    if held is None:
        return None
    if held[0] != key.fingerprint:
        raise BatchKeyReused("This idempotency key was already used for a different batch; use a new key per batch.")
    return BatchOutcome(held[1], replayed=True)


def event_batch_keys_expire(now: datetime | None = None) -> int:
    """Delete idempotency keys past ``EVENTS_IDEMPOTENCY_HOURS`` (they no longer replay anyway);
    returns how many went."""
    now = now or timezone.now()
    deleted, _ = EventBatchKey.objects.filter(created__lt=now - _idempotency_ttl()).delete()
    return deleted


def events_record_batch(visit: Visit, events: Sequence[dict], *, user=None, trusted: bool = False,
                        key: BatchKey | None = None) -> BatchOutcome:
    """Append a validated batch of events (dicts with type, product, and optionally timestamp,
    source, position, model_version, token) to a visit in one insert, after ``events_screen``;
    with ``key``, at most once per key (``_key_claim``)."""
    kept, ignored = events_screen(visit.uuid, events, trusted=trusted)
    result = {"count": len(kept), "ignored": ignored}
    now = timezone.now()
    user = user if user is not None and user.is_authenticated else None
    is_staff = bool(visit.is_staff or (user is not None and user.is_staff))
    user_id = user.pk if user is not None else visit.user_id
    with transaction.atomic():
        if key is not None:
            held = _key_claim(key, result, now)
            if held is not None:
                return held
        if not kept:
            return BatchOutcome(result)
        history = _history_length(visit.pk)
        rows = []
        last = now
        for item in kept:
            event_type = item["type"]
            stamp = item.get("timestamp") or now
            last = max(last, stamp)
            rows.append(
                (visit.pk, event_type, item["product"], item.get("source") or "", item.get("position"),
                 item.get("model_version") or "", history, stamp, user_id, is_staff, item["trusted"])
            )
            if event_type in HISTORY_EVENT_TYPES:
                history += 1
        db.events_insert(rows)
        Visit.objects.filter(pk=visit.pk, last_seen__lt=last).update(last_seen=last)
    return BatchOutcome(result)


def events_record_for_api(visit_uuid: uuid_lib.UUID | str, events: Sequence[dict], *, user=None,
                          trusted: bool = False, key: BatchKey | None = None) -> BatchOutcome:
    """``visit_for_api`` and ``events_record_batch`` in one: the visit an API client names (created
    when unseen) gets the validated, screened batch. On PostgreSQL this is one statement (visit
    upsert, the history count and the insert) and one commit, instead of five queries; a key adds
    one statement."""
    if not db.api_batch_in_one_statement():
        return events_record_batch(visit_for_api(visit_uuid, user=user), events, user=user, trusted=trusted, key=key)
    visit_uuid = uuid_lib.UUID(str(visit_uuid))
    kept, ignored = events_screen(visit_uuid, events, trusted=trusted)
    result = {"count": len(kept), "ignored": ignored}
    user = user if user is not None and user.is_authenticated else None
    now = timezone.now()
    types, stamps, before = [], [], []
    history = 0
    for item in kept:
        types.append(item["type"])
        stamps.append(item.get("timestamp") or now)
        before.append(history)  # history events earlier in this batch
        if item["type"] in HISTORY_EVENT_TYPES:
            history += 1
    params = {
        "uuid": str(visit_uuid), "now": now, "last": max(stamps + [now]),
        "user": user.pk if user is not None else None, "staff": bool(user is not None and user.is_staff),
        "type": types, "product": [item["product"] for item in kept],
        "source": [item.get("source") or "" for item in kept],
        "position": [item.get("position") for item in kept],
        "model": [item.get("model_version") or "" for item in kept], "before": before, "ts": stamps,
        "trusted": [item["trusted"] for item in kept],
    }
    with transaction.atomic():
        if key is not None:
            held = _key_claim(key, result, now)
            if held is not None:
                return held
        if kept:
            db.api_batch_insert(params)
    return BatchOutcome(result)


# --- Importing logs ----------------------------------------------------------------------

def events_import(path, fmt: str = "auto", *, strict: bool = False, progress: bool = False, ledger: bool = True):
    """Import a click log (YOOCHOOSE, GRU4Rec TSV or REES46 CSV) into visits and events.

    Bad rows are reported by line number and skipped; with ``strict`` nothing is written when any
    row is bad. Re-importing a file adds nothing; blocks the import ledger records as imported are
    skipped unless ``ledger`` is False (after events were deleted on purpose). Returns
    ``tracking.importers.ImportStats``."""
    # why: the importer pulls pandas and psycopg2 bulk code; web processes never import a file
    from .importers import import_file

    return import_file(str(path), fmt, strict=strict, progress=progress, ledger=ledger)


# --- Popularity --------------------------------------------------------------------------

def popularity_refresh(now: datetime | None = None) -> int:
    """Recompute ``ProductPopularity`` (views and purchases per product over each window in
    ``POPULARITY_WINDOWS_DAYS``) in one set-based statement. Only trusted events count (what every
    new visitor sees must not move with what an anonymous client claims: ``Event.trusted``);
    staff events are left out.
    Returns the number of rows written. Safe to run twice or concurrently."""
    now = now or timezone.now()
    windows = sorted(set(int(d) for d in settings.POPULARITY_WINDOWS_DAYS))
    longest = windows[-1]
    since = {d: now - timedelta(days=d) for d in windows}
    aggregates, params = [], []
    for d in windows:
        aggregates.append(
            f"SUM(CASE WHEN e.timestamp >= %s AND e.event_type = 'view' THEN 1 ELSE 0 END) AS v{d}, "
            f"SUM(CASE WHEN e.timestamp >= %s AND e.event_type = 'purchase' THEN 1 ELSE 0 END) AS p{d}"
        )
        params += [db.datetime_param(since[d])] * 2
    agg_sql = (
        "SELECT e.product_id, " + ", ".join(aggregates) + " FROM tracking_event e "
        "WHERE e.timestamp >= %s AND e.timestamp <= %s AND e.is_staff = %s AND e.trusted "
        "AND e.event_type IN ('view', 'purchase') GROUP BY e.product_id"
    )
    params += [db.datetime_param(since[longest]), db.datetime_param(now), False]
    selects = []
    for d in windows:
        score = f"(a.v{d} + {PURCHASE_WEIGHT} * a.p{d})"
        long_score = f"(a.v{longest} + {PURCHASE_WEIGHT} * a.p{longest})"
        # Daily rate in this window over the daily rate in the longest one, smoothed by +1 so
        # a single view does not top the trending list.
        trend = f"(({score} * 1.0 / {d}) + 1.0) / (({long_score} * 1.0 / {longest}) + 1.0)"
        selects.append(
            f"SELECT a.product_id, {d}, a.v{d}, a.p{d}, {score}, {trend}, %s FROM agg a WHERE a.v{d} + a.p{d} > 0"
        )
        params.append(db.datetime_param(now))
    # "INSERT ... WITH ... SELECT" (not "WITH ... INSERT"): both databases then report the rowcount.
    insert_sql = (
        "INSERT INTO tracking_productpopularity (product_id, window_days, views, purchases, score, trend, updated) "
        f"WITH agg AS ({agg_sql}) " + " UNION ALL ".join(selects)
    )
    with transaction.atomic():
        with connection.cursor() as cursor:
            db.popularity_refresh_lock(cursor)
            cursor.execute("DELETE FROM tracking_productpopularity")
            cursor.execute(insert_sql, params)
            written = cursor.rowcount
    return written


# --- Export for training -----------------------------------------------------------------

def _write_tsv(path: Path, session, item_ext, time_us) -> None:
    import pandas as pd

    exact_ms = not len(time_us) or bool((time_us % 1000 == 0).all())
    seconds = time_us / 1_000_000
    frame = pd.DataFrame({"SessionId": session, "ItemId": item_ext, "Time": seconds})
    frame.to_csv(path, sep="\t", index=False, float_format="%.3f" if exact_ms else "%.6f", lineterminator="\n")


def sessions_export(
    outdir, since=None, until=None, test_days: float = 1, event_types: Iterable[str] = HISTORY_EVENT_TYPES
) -> dict:
    """Write ``train.tsv`` and ``test.tsv`` (``SessionId ItemId Time``, tab-separated, Time in unix
    seconds, ItemId = product external id, SessionId = visit id): the operator's copy of what
    training reads in memory (``selectors.sessions_training_data``: staff events excluded, the
    engine's preprocessing and time split). Returns the split's statistics."""
    started = time.perf_counter()
    from .selectors import sessions_training_data  # why: selectors import this module's constants (an import cycle)

    data = sessions_training_data(since=since, until=until, test_days=test_days, event_types=event_types)
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    train, test = data.train, data.test
    import pandas as pd  # here, not at start-up: web workers never export

    lookup = pd.Series(product_external_ids(np.unique(np.concatenate([train.item, test.item]))), dtype=object)
    for part, name in ((train, "train.tsv"), (test, "test.tsv")):
        _write_tsv(outdir / name, part.session, lookup.reindex(part.item).to_numpy(), part.time_us)

    def span(part):
        if not len(part.time_us):
            return None, None
        fmt = lambda us: datetime.fromtimestamp(us / 1e6, tz=timezone.get_fixed_timezone(0)).isoformat()  # noqa: E731
        return fmt(int(part.time_us.min())), fmt(int(part.time_us.max()))

    stats = {
        "events_read": data.events_read,
        "train_events": len(train),
        "train_sessions": int(len(np.unique(train.session))),
        "train_items": int(len(np.unique(train.item))),
        "test_events": len(test),
        "test_sessions": int(len(np.unique(test.session))),
        "test_items": int(len(np.unique(test.item))),
        "train_span": span(train),
        "test_span": span(test),
        "event_types": list(data.event_types),
        "test_days": test_days,
        "outdir": str(outdir),
        "seconds": round(time.perf_counter() - started, 3),
    }
    return stats


__all__ = [
    "Visitor",
    "visit_for_visitor",
    "visit_for_api",
    "event_record",
    "event_record_for_visitor",
    "events_record_batch",
    "events_record_for_api",
    "events_screen",
    "event_batch_replay",
    "event_batch_keys_expire",
    "events_import",
    "popularity_refresh",
    "sessions_export",
]
