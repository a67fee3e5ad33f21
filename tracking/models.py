"""Tracking data: browser/API/imported visits and the append-only stream of their events.

The event table is the recommender's training data and grows to tens of millions of rows, so its
indexes are chosen for the two access paths that matter (a visit's events in time order, time-range
scans) and for cheap bulk imports.
"""
import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class Visit(models.Model):
    """One browsing session. ``uuid`` is the id the outside world sees (JS, API, exports)."""

    class Source(models.TextChoices):
        WEB = "web", "Web"
        API = "api", "API"
        IMPORT = "import", "Import"

    # A bigint primary key keeps the event table and its indexes small and, because new visits get
    # increasing ids, keeps bulk-imported events appended near each other in the (visit, time) index.
    uuid = models.UUIDField(unique=True, default=uuid.uuid4, editable=False)
    started = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)
    # Indexed only where set (partial index below): imported and anonymous visits, nearly all of
    # them, then cost no index entry (a bulk import writes tens of thousands of visits a block).
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="visits",
        db_index=False,
    )
    is_staff = models.BooleanField(default=False)
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.WEB)

    class Meta:
        indexes = [
            models.Index(fields=["user"], name="visit_user", condition=models.Q(user__isnull=False)),
        ]
        # started: a BRIN index on PostgreSQL (migration 0006; a bulk import writes a visit for every
        # four events and a btree cost a fifth of each insert).

    def __str__(self):
        return str(self.uuid)


class EventType(models.TextChoices):
    VIEW = "view", "View"
    CLICK = "click", "Click"
    IMPRESSION = "impression", "Impression"
    ADD_TO_CART = "add_to_cart", "Add to cart"
    REMOVE_FROM_CART = "remove_from_cart", "Remove from cart"
    PURCHASE = "purchase", "Purchase"


class Event(models.Model):
    """One interaction. Append-only: rows are inserted by services and imports, never updated."""

    Type = EventType

    # The foreign keys have no database constraint: per-row FK triggers cost more than half of a
    # bulk import's time on this table. Rows are only written by the services (from model
    # instances) and by the importer (with ids it has just resolved or created in the same
    # transaction), and Django's on_delete handling still applies. No separate index on visit:
    # the (visit, timestamp) index below serves "the events of a visit in time order" and
    # lookups by visit.
    visit = models.ForeignKey(
        Visit, on_delete=models.CASCADE, related_name="events", db_index=False, db_constraint=False
    )
    event_type = models.CharField(max_length=16, choices=EventType.choices)
    # No index on product either (it would double the import time): product deletion, which
    # must check for events, is a rare admin action and may scan; popularity scans by time.
    product = models.ForeignKey(
        "catalog.Product", on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False
    )
    # Where the product was shown: grid, search, recommended, similar, cart, ... ("" when unknown).
    source = models.CharField(max_length=32, blank=True, default="")
    position = models.PositiveIntegerField(null=True, blank=True)
    # Set on events that come from a recommendation: which model produced the list.
    model_version = models.CharField(max_length=64, blank=True, default="")
    # Items in the visit's history when the event happened; NULL for imported logs (not recorded).
    history_length = models.PositiveIntegerField(null=True, blank=True)
    timestamp = models.DateTimeField(default=timezone.now)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False,
        db_constraint=False,
    )
    is_staff = models.BooleanField(default=False)
    # Imported rows only: the occurrence number (0, 1, ...) of this exact (visit, timestamp,
    # product, type) within its file, so real repeated rows of a log are kept while the importer
    # recognises rows it imported before (tracking.importers). NULL for live events.
    import_seq = models.PositiveSmallIntegerField(null=True, blank=True)
    # Whether the shop vouches for this event's signal. Signals that decide what the shop shows or
    # which model staff trust (popularity's views and purchases, a model version's impressions and
    # clicks) count trusted events only. True for what the shop records itself (pages, carts,
    # orders) and what an operator imports; for events sent to the API only from a client with the
    # record_trusted_events permission, or, for a recommendation impression or click, with the
    # served-item token of that visit (tracking.attribution). The database default keeps bulk
    # imports (COPY without this column) and the column's addition free of per-row work.
    trusted = models.BooleanField(default=True, db_default=True)

    class Meta:
        # No unique index: re-imports are recognised by the import ledger (ImportBlock) and, for
        # visits that existed before a block, by an anti-join on (visit, timestamp); a unique
        # index on the whole row would be maintained for every one of tens of millions of rows.
        indexes = [
            models.Index(fields=["visit", "timestamp"], name="event_visit_time"),
            models.Index(fields=["user"], name="event_user", condition=models.Q(user__isnull=False)),
            # A model version's served impressions and clicks (recommendations' online
            # performance, experiments): only attributed trusted rows have an entry, so imports
            # and ordinary events pay nothing for it; with source and is_staff in it the count is
            # an index-only scan, already in DISTINCT order.
            models.Index(
                fields=["model_version", "event_type", "visit", "product"], name="event_served_attribution",
                condition=models.Q(trusted=True, model_version__gt=""), include=["source", "is_staff"],
            ),
        ]
        permissions = [
            # For server-side integrations (another checkout, a native app's backend).
            ("record_trusted_events", "Can send trusted events (purchases, counted views, unsigned attribution)"),
        ]
        # The BRIN index on timestamp (time-range scans over tens of millions of rows) is created
        # by migration 0002 on PostgreSQL; other databases get a plain index there.

    def __str__(self):
        return f"{self.event_type} {self.product_id} @ {self.timestamp:%Y-%m-%d %H:%M:%S}"


class ProductPopularity(models.Model):
    """Views and purchases of a product over one recent window, recomputed by ``popularity_refresh``."""

    product = models.ForeignKey("catalog.Product", on_delete=models.CASCADE, related_name="+")
    window_days = models.PositiveSmallIntegerField()
    views = models.PositiveIntegerField(default=0)
    purchases = models.PositiveIntegerField(default=0)
    # views + PURCHASE_WEIGHT * purchases
    score = models.FloatField(default=0)
    # The window's daily score rate over the longest window's daily rate (smoothed): > 1 is rising.
    trend = models.FloatField(default=0)
    updated = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["product", "window_days"], name="popularity_product_window"),
        ]
        indexes = [
            models.Index(fields=["window_days", "-score"], name="popularity_window_score"),
            models.Index(fields=["window_days", "-trend"], name="popularity_window_trend"),
        ]
        verbose_name_plural = "product popularity"


class ImportBlock(models.Model):
    """Ledger of imported file blocks: what makes re-imports add nothing. A block (the same bytes of
    the same format and layout) recorded here was fully imported in the transaction that recorded
    it, so importing it again skips it without touching the event table. Only blocks without bad
    rows are recorded (bad rows are reported again on every import). Rows of blocks not recorded
    here that belong to visits from before the block (overlapping files, other block bounds) are
    checked against the events one by one (tracking.importers)."""

    digest = models.CharField(max_length=40, unique=True)  # blake2b-160 of layout + block bytes
    format = models.CharField(max_length=16)
    rows = models.PositiveIntegerField()
    imported = models.PositiveIntegerField()
    created = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return f"{self.format} block {self.digest[:12]} ({self.rows} rows)"


class EventBatchKey(models.Model):
    """The idempotency key of an accepted event batch (the ``Idempotency-Key`` header or the body's
    ``batch_id``), written in the transaction that stores the batch. A repeat of the key within
    ``EVENTS_IDEMPOTENCY_HOURS`` answers with ``result`` and stores nothing; the same key with
    another body is refused. ``scope`` is whose key it is: ``user:<pk>`` for a token client,
    ``visit:<uuid>`` for an anonymous one, so one client can never collide with another's keys."""

    scope = models.CharField(max_length=64)
    key = models.CharField(max_length=100)
    fingerprint = models.CharField(max_length=64)  # SHA-256 of the request body, canonical JSON
    result = models.JSONField()  # what the first answer said besides the session: count, ignored
    created = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scope", "key"], name="eventbatchkey_scope_key")]

    def __str__(self):
        return f"{self.scope} {self.key}"
