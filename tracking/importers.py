"""Streaming importers for real click logs (YOOCHOOSE, GRU4Rec TSV, REES46) into visits and events.

Files are read in blocks of whole lines; a read-ahead thread parses each block column-wise with
pandas' C parser (a fast path that assumes a clean block, and a careful path that finds every bad
line when it is not), validates it with numpy and groups its rows for writing, while the main
thread writes the previous block in one transaction: binary ``COPY`` straight into the visit and
event tables on PostgreSQL (see ``_PostgresWriter``), ``bulk_create`` elsewhere. Re-imports add
nothing: blocks recorded in the import ledger (``ImportBlock``) are skipped, and rows of visits
from before a block are checked against the events. Memory stays flat: two blocks at a time, the
item id -> product pk map and 8 bytes per distinct session.
"""
from __future__ import annotations

import hashlib
import io
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone as dt_timezone

import numpy as np
import pandas as pd
import psycopg2
from django.db import DatabaseError, connection, transaction
from django.db.models import Max

from catalog.models import Product
from catalog.services import product_stubs_ensure

# The file formats are the engine's (plain numpy/pandas, no Django): one parser per format.
from recommendations.gru4rec.formats import (  # noqa: F401 (parse_block, iter_blocks: tests and callers)
    BLOCK_BYTES,
    EVENT_NAMES,
    IMPORT_FORMATS,
    Chunk,
    FileLayout,
    ImportFormatError,
    RowError,
    detect_layout,
    iter_blocks,
    parse_block,
    read_blocks,
)

from .models import Event, EventType, Visit

FORMATS = IMPORT_FORMATS
EVENT_TYPES = [value for value, _ in EventType.choices]
TYPE_CODE = {value: i for i, value in enumerate(EVENT_TYPES)}
# The formats' event names -> this app's event type codes (the order is kept: the importer's row
# order sorts by type code).
_SHOP_TYPE_CODE = np.array([TYPE_CODE[name] for name in EVENT_NAMES], dtype=np.int16)
# Namespace of the deterministic visit uuids of imported sessions: uuid5(NS, "format:session").
VISIT_NAMESPACE = uuid.UUID("6b1d4c52-8f0a-5e0e-9a53-1d0f2c7d8e41")
MAX_ERRORS_LISTED = 20


@dataclass
class ImportStats:
    path: str = ""
    format: str = ""
    rows_read: int = 0
    imported: int = 0
    skipped: int = 0
    duplicates: int = 0
    sessions: int = 0
    visits_created: int = 0
    products_created: int = 0
    seconds: float = 0.0
    strict_failed: bool = False
    errors: list[RowError] = field(default_factory=list)
    # seconds spent per stage (parse, products, visits, events): where an import's time goes
    timings: dict[str, float] = field(default_factory=dict)

    def timed(self, stage: str, since: float) -> float:
        now = time.perf_counter()
        self.timings[stage] = self.timings.get(stage, 0.0) + now - since
        return now

    @property
    def events_per_second(self) -> float:
        return self.rows_read / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict:
        return {
            "path": self.path,
            "format": self.format,
            "rows_read": self.rows_read,
            "imported": self.imported,
            "skipped": self.skipped,
            "duplicates": self.duplicates,
            "sessions": self.sessions,
            "visits_created": self.visits_created,
            "products_created": self.products_created,
            "seconds": round(self.seconds, 3),
            "events_per_second": round(self.events_per_second),
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "errors": [str(e) for e in self.errors],
        }


def read_events(path: str, layout: FileLayout, block_bytes: int = BLOCK_BYTES):
    """``formats.read_blocks`` with the rows' event types as this app's codes (``EVENT_TYPES``)."""
    for block, chunk, errors, rows, consumed in read_blocks(path, layout, block_bytes):
        chunk.type_code = _SHOP_TYPE_CODE[chunk.type_code]
        yield block, chunk, errors, rows, consumed


def block_digest(block: bytes, layout: FileLayout, repeat: int = 0) -> str:
    """The import ledger's key of a block: its bytes under this format and layout (the same bytes
    read as another format, or with other columns, are other events), and how many blocks of the
    same file had the very same bytes before it (its rows are further occurrences of theirs)."""
    key = f"{layout.fmt}|{layout.sep}|{','.join(layout.columns)}|{layout.time_unit}".encode()
    digest = hashlib.blake2b(block, digest_size=20, key=key[:64])
    if repeat:
        digest.update(b"\0repeat %d" % repeat)
    return digest.hexdigest()


# --- Preparing a block (in the read-ahead thread: no database) -----------------------------

_PG_EPOCH_US = 946_684_800 * 1_000_000  # PostgreSQL binary timestamps count from 2000-01-01
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, no header extension
_COPY_TRAILER = b"\xff\xff"
# tracking_event columns in the order of the binary COPY rows below
EVENT_COPY_COLUMNS = (
    "visit_id, event_type, product_id, source, position, model_version, history_length, timestamp, user_id, "
    "is_staff, import_seq"
)


def _event_copy_dtype(type_length: int) -> np.dtype:
    """One tracking_event row in binary COPY format, for an event type name of this length:
    visit_id, event_type, product_id, source '', position NULL, model_version '', history_length
    NULL, timestamp, user_id NULL, is_staff false, import_seq."""
    return np.dtype(
        [("nfields", ">i2"), ("len_visit", ">i4"), ("visit", ">i8"), ("len_type", ">i4"), ("type", f"S{type_length}"),
         ("len_product", ">i4"), ("product", ">i8"), ("len_source", ">i4"), ("len_position", ">i4"),
         ("len_model", ">i4"), ("len_history", ">i4"), ("len_ts", ">i4"), ("ts", ">i8"), ("len_user", ">i4"),
         ("len_staff", ">i4"), ("staff", "?"), ("len_seq", ">i4"), ("seq", ">i2")]
    )


@dataclass
class _Group:
    """A block's rows of one event type, in (session, time) order: the binary COPY rows of
    tracking_event, whose visit and product columns the writer fills in once it knows them."""

    code: int
    session: np.ndarray  # index into Batch.uuids
    item: np.ndarray  # index into Batch.items
    rows: np.ndarray  # structured, _event_copy_dtype

    def time_us(self) -> np.ndarray:
        return self.rows["ts"].astype(np.int64) + _PG_EPOCH_US


@dataclass
class Batch:
    """The valid rows of one block, ready to write: its sessions in uuid order (the order their new
    visits get their ids in, so the visit uuid index is filled in key order), its distinct items,
    and its rows grouped by event type in (session, time) order (the event (visit, timestamp)
    index order), with their occurrence numbers."""

    uuids: np.ndarray  # S16: visit uuid of each session, ascending
    started: np.ndarray  # int64 µs: first and last event of each session in this block
    last: np.ndarray
    items: np.ndarray  # the block's distinct item ids (int64 or str)
    categories: np.ndarray | None  # per item: its first known category ("" when none)
    groups: list[_Group]

    def __len__(self):
        return sum(len(g.rows) for g in self.groups)

    def session_hashes(self) -> np.ndarray:
        """The first 8 bytes of each session's uuid (to count a file's distinct sessions)."""
        return np.frombuffer(self.uuids.tobytes(), dtype=np.int64)[::2].copy()


class _Occurrences:
    """Numbers identical (session, item, time, type) rows 0, 1, ... (``import_seq``), so real repeated
    rows of a log are all kept while the same rows imported again are recognised. The numbering
    continues across a block boundary (identical rows on both sides are both kept); identical rows
    further apart than one block count as one re-delivered event."""

    def __init__(self):
        self.previous: dict | None = None

    def number(self, uuids, session, item_values, time_us, type_code) -> np.ndarray:
        """Occurrence numbers of rows sorted by (session, time, item, type)."""
        n = len(session)
        seq = np.zeros(n, dtype=np.int64)
        if n > 1:
            same = np.ones(n, dtype=bool)
            same[0] = False
            for col in (session, time_us, item_values, type_code):
                same[1:] &= col[1:] == col[:-1]
            if same[1:].any():
                idx = np.arange(n)
                starts = np.where(~same, idx, 0)
                np.maximum.accumulate(starts, out=starts)
                seq = idx - starts
        row_uuid = uuids[session]
        prev = self.previous
        if prev is not None and n:
            carried = np.isin(uuids, prev["sessions"])[session]
            if carried.any():
                cols = ["u", "item", "t", "c"]
                mine = pd.DataFrame({"u": row_uuid[carried], "item": item_values[carried].astype(str),
                                     "t": time_us[carried], "c": type_code[carried].astype(np.int64)})
                theirs_rows = np.isin(prev["u"], row_uuid[carried])
                theirs = pd.DataFrame({"u": prev["u"][theirs_rows], "item": prev["item"][theirs_rows].astype(str),
                                       "t": prev["t"][theirs_rows], "c": prev["c"][theirs_rows].astype(np.int64),
                                       "seq": prev["seq"][theirs_rows]})
                if len(theirs):
                    next_seq = (theirs.groupby(cols)["seq"].max() + 1).rename("offset").reset_index()
                    offset = mine.merge(next_seq, how="left", on=cols)["offset"].fillna(0).to_numpy(dtype=np.int64)
                    seq[carried] += offset
        self.previous = {"sessions": uuids, "u": row_uuid, "item": item_values, "t": time_us, "c": type_code,
                         "seq": seq}
        return seq


def batch_prepare(chunk: Chunk, fmt: str, occurrences: _Occurrences) -> Batch:
    """Group a chunk's rows for writing (see ``Batch``); pure numpy, no database."""
    codes, sessions = pd.factorize(chunk.session)
    uuids = np.frombuffer(_visit_uuid_bytes(fmt, sessions), dtype="S16")
    by_uuid = np.argsort(uuids, kind="stable")
    rank = np.empty(len(uuids), dtype=np.int64)
    rank[by_uuid] = np.arange(len(uuids))
    uuids = uuids[by_uuid]
    item_codes, items = pd.factorize(chunk.item)
    items = np.asarray(items)
    session = rank[codes]
    order = np.lexsort((chunk.type_code, item_codes, chunk.time_us, session))
    session, item = session[order], item_codes[order].astype(np.int64)
    time_us, type_code = chunk.time_us[order], chunk.type_code[order]
    seq = occurrences.number(uuids, session, items[item], time_us, type_code)
    if len(seq) and seq.max() > 32767:
        raise ValueError("more than 32767 identical rows")
    n = len(uuids)
    started = np.zeros(n, dtype=np.int64)
    last = np.zeros(n, dtype=np.int64)
    if len(session):
        first = np.flatnonzero(np.r_[True, session[1:] != session[:-1]])
        end = np.r_[first[1:], len(session)] - 1
        started[session[first]] = time_us[first]
        last[session[end]] = time_us[end]
    categories = None
    if chunk.category is not None:
        # The first known category of each item ("0" means unknown in YOOCHOOSE).
        codes, names = chunk.category
        categories = np.full(len(items), "", dtype=object)
        known = np.array([name not in ("", "0") for name in names], dtype=bool)[codes] if len(names) else codes > 0
        if known.any():
            item_known, code_known = item_codes[known], codes[known]
            _, first = np.unique(item_known, return_index=True)
            categories[item_known[first]] = names[code_known[first]]
    groups = []
    for code in np.unique(type_code):
        mask = type_code == code
        whole = bool(mask.all())
        name = EVENT_TYPES[int(code)].encode()
        rows = np.zeros(int(mask.sum()), dtype=_event_copy_dtype(len(name)))
        rows["nfields"] = 11
        rows["len_visit"], rows["len_type"], rows["type"], rows["len_product"] = 8, len(name), name, 8
        rows["len_position"], rows["len_history"], rows["len_user"] = -1, -1, -1  # NULL
        rows["len_ts"], rows["ts"] = 8, (time_us if whole else time_us[mask]) - _PG_EPOCH_US
        rows["len_staff"], rows["len_seq"] = 1, 2
        rows["seq"] = seq if whole else seq[mask]
        groups.append(_Group(int(code), session if whole else session[mask], item if whole else item[mask], rows))
    return Batch(uuids, started, last, items, categories, groups)


@dataclass
class _Prepared:
    """One block as the read-ahead thread hands it over."""

    batch: Batch
    errors: list[RowError]
    rows: int  # data rows in the block, bad ones included
    consumed: int  # bytes of the file read so far
    digest: str


def _prepared_blocks(path: str, layout: FileLayout, block_bytes: int) -> Iterator[_Prepared]:
    occurrences = _Occurrences()
    seen: dict[str, int] = {}  # digest -> blocks of this file with these bytes so far
    for block, chunk, errors, rows, consumed in read_events(path, layout, block_bytes):
        batch = batch_prepare(chunk, layout.fmt, occurrences)
        digest = block_digest(block, layout)
        if digest in seen:
            seen[digest] += 1
            digest = block_digest(block, layout, seen[digest])
        else:
            seen[digest] = 0
        yield _Prepared(batch, errors, rows, consumed, digest)


# --- Writing -------------------------------------------------------------------------------

class _Writer:
    """Maps a batch's items to products and sessions to visits, and writes its events: the
    database-independent part, and the fallback (``bulk_create``) for databases other than
    PostgreSQL."""

    def __init__(self, fmt: str):
        self.fmt = fmt
        # item dtype kind -> (item ids seen so far, their product pks)
        self.products: dict[str, tuple[pd.Index, np.ndarray]] = {}

    def write(self, batch: Batch, stats: ImportStats, digest: str | None = None) -> None:
        """Write one batch in the caller's transaction."""
        if not len(batch):
            return
        t = time.perf_counter()
        products = self.product_ids(batch, stats)
        t = stats.timed("products", t)
        visits, fresh = self.visit_ids(batch, stats)
        t = stats.timed("visits", t)
        inserted = self.events(batch, visits, products, fresh)
        stats.timed("events", t)
        stats.imported += inserted
        stats.duplicates += len(batch) - inserted

    def product_ids(self, batch: Batch, stats: ImportStats) -> np.ndarray:
        """Product pk of each of the batch's items; unknown items become stub products (catalogue
        service). The items seen so far are a pandas index (per item dtype: integer ids, or
        strings) looked up in C, not a dict probed item by item."""
        items = batch.items
        known, pks = self.products.get(items.dtype.kind, (pd.Index([], dtype=items.dtype), np.zeros(0, np.int64)))
        pos = known.get_indexer(items)
        missing = np.flatnonzero(pos < 0)
        if len(missing):
            keys = [str(item) for item in items[missing].tolist()]
            categories = {}
            if batch.categories is not None:
                categories = {k: c for k, c in zip(keys, batch.categories[missing].tolist()) if c}
            before = Product.objects.aggregate(m=Max("pk"))["m"] or 0
            found = product_stubs_ensure(keys, categories)
            stats.products_created += sum(1 for pk in found.values() if pk > before)
            pos[missing] = np.arange(len(known), len(known) + len(missing))
            known = known.append(pd.Index(items[missing]))
            pks = np.concatenate([pks, np.fromiter((found[k] for k in keys), dtype=np.int64, count=len(keys))])
            self.products[items.dtype.kind] = (known, pks)
        return pks[pos]

    def visit_ids(self, batch: Batch, stats: ImportStats) -> tuple[np.ndarray, np.ndarray]:
        """(visit pk, created by this batch) of each session; visits that existed get their time
        span extended."""
        to_dt = lambda us: datetime(1970, 1, 1, tzinfo=dt_timezone.utc) + timedelta(microseconds=int(us))  # noqa: E731
        uuids = [uuid.UUID(bytes=bytes(u).ljust(16, b"\0")) for u in batch.uuids]
        ids = np.zeros(len(uuids), dtype=np.int64)
        fresh = np.zeros(len(uuids), dtype=bool)
        for start in range(0, len(uuids), 500):
            part = uuids[start : start + 500]
            existing = {v.uuid: v for v in Visit.objects.filter(uuid__in=part)}
            new, changed = [], []
            for j, u in enumerate(part):
                s, e = to_dt(batch.started[start + j]), to_dt(batch.last[start + j])
                v = existing.get(u)
                if v is None:
                    new.append(Visit(uuid=u, started=s, last_seen=e, source=Visit.Source.IMPORT))
                    fresh[start + j] = True
                elif s < v.started or e > v.last_seen:
                    v.started, v.last_seen = min(s, v.started), max(e, v.last_seen)
                    changed.append(v)
            Visit.objects.bulk_create(new)
            Visit.objects.bulk_update(changed, ["started", "last_seen"])
            stats.visits_created += len(new)
            pks = dict(Visit.objects.filter(uuid__in=part).values_list("uuid", "pk"))
            ids[start : start + len(part)] = [pks[u] for u in part]
        return ids, fresh

    def events(self, batch: Batch, visits, products, fresh) -> int:
        """Insert the batch's events: all rows of visits created here, and the rows of older visits
        that are not there yet (same visit, time, product, type and occurrence number)."""
        epoch = datetime(1970, 1, 1, tzinfo=dt_timezone.utc)
        inserted = 0
        for g in batch.groups:
            v, p = visits[g.session], products[g.item]
            rows = list(zip(v.tolist(), p.tolist(), g.time_us().tolist(), g.rows["seq"].tolist(), fresh[g.session].tolist()))
            old_visits = sorted({r[0] for r in rows if not r[4]})
            present = set()
            for start in range(0, len(old_visits), 500):
                present.update(
                    Event.objects.filter(visit_id__in=old_visits[start : start + 500], event_type=EVENT_TYPES[g.code],
                                         import_seq__isnull=False)
                    .values_list("visit_id", "product_id", "timestamp", "import_seq")
                )
            batch_rows = []
            for vid, pid, us, s, new in rows:
                stamp = epoch + timedelta(microseconds=us)
                if not new and (vid, pid, stamp, s) in present:
                    continue
                batch_rows.append(Event(visit_id=vid, product_id=pid, timestamp=stamp, event_type=EVENT_TYPES[g.code],
                                        import_seq=s, history_length=None))
            Event.objects.bulk_create(batch_rows, batch_size=2000)
            inserted += len(batch_rows)
        return inserted

    def forget(self) -> None:
        """A block was skipped: what the writer remembers of the previous block no longer follows."""

    def committed(self) -> None:
        """A block was committed."""

    def reset(self) -> None:
        """A block's transaction was rolled back: forget what it created."""
        self.products.clear()
        self.forget()


class _PostgresWriter(_Writer):
    """The PostgreSQL path: binary COPY straight into the visit and event tables.

    Visits of a batch's sessions that neither an earlier block of this import wrote nor exist
    are copied into tracking_visit with ids reserved from its sequence, in uuid order (the unique
    uuid index is then filled in key order: half the cost of random order). That copy fails as a
    whole when one of them exists after all (the file overlaps an earlier import); the batch
    then takes the upsert path, and so do the next ones as long as they meet visits from before.
    Events of visits created by the batch cannot be in the table yet, so they are copied straight
    in; the others go through a staging table and are inserted where they are missing (an
    anti-join on the (visit, timestamp) index), with their visits locked first, so two imports of
    overlapping files never both add the same row."""

    def __init__(self, fmt: str):
        super().__init__(fmt)
        self.upsert = False
        # (sorted uuids, ids) of the sessions of the last block written: sessions that continue
        # over a block boundary are known without a lookup.
        self.recent: tuple[np.ndarray, np.ndarray] | None = None
        self.sequence: str | None = None

    def write(self, batch: Batch, stats: ImportStats, digest: str | None = None) -> None:
        if not len(batch):
            return
        with connection.cursor() as cursor:
            # A crash loses at most the last blocks, which a re-import restores: no WAL flush wait
            # per commit.
            cursor.execute("SET LOCAL synchronous_commit = off; SET LOCAL jit = off")
            if digest is not None and not self._ledger_claim(cursor, digest, len(batch)):
                # Imported before (committed): nothing of this block can be missing.
                stats.duplicates += len(batch)
                self.forget()
                return
        before = stats.imported
        super().write(batch, stats, digest)
        if digest is not None:
            with connection.cursor() as cursor:
                cursor.execute("UPDATE tracking_importblock SET imported = %s WHERE digest = %s",
                               [stats.imported - before, digest])

    def forget(self) -> None:
        self.recent = None
        self.upsert = True  # the next block may continue sessions of the skipped one

    def committed(self) -> None:
        """Summarise the block's page ranges in the BRIN time index while its pages are still in
        shared buffers (a few ms a block): an unsummarised range matches every time range, so
        until autovacuum got to it a time-range scan would read everything the import wrote.
        Summarising takes a lock that autovacuum also takes; rather than wait for it, this
        block's ranges are left to the next block or to autovacuum."""
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '50ms'; SET LOCAL synchronous_commit = off")
                cursor.execute("SELECT brin_summarize_new_values('event_timestamp_brin')")
        except (DatabaseError, psycopg2.Error) as exc:
            if _pgcode(exc) != "55P03":  # lock_not_available
                raise

    def _ledger_claim(self, cursor, digest: str, rows: int) -> bool:
        """Record the block in the import ledger (in the block's transaction); False when it is
        already there. A concurrent import of the same block waits here for the other
        transaction: if that one commits, this block is skipped; if it rolls back, this one
        imports it."""
        cursor.execute(
            "INSERT INTO tracking_importblock (digest, format, rows, imported, created) "
            "VALUES (%s, %s, %s, 0, now()) ON CONFLICT (digest) DO NOTHING RETURNING id",
            [digest, self.fmt, rows],
        )
        return cursor.fetchone() is not None

    # visits
    def visit_ids(self, batch: Batch, stats: ImportStats) -> tuple[np.ndarray, np.ndarray]:
        uuids = batch.uuids
        ids = np.zeros(len(uuids), dtype=np.int64)
        known = np.zeros(len(uuids), dtype=bool)
        if self.recent is not None and len(uuids):
            prev_uuids, prev_ids = self.recent
            pos = np.minimum(np.searchsorted(prev_uuids, uuids), len(prev_uuids) - 1)
            known = prev_uuids[pos] == uuids
            ids[known] = prev_ids[pos[known]]
        with connection.cursor() as cursor:
            raw = cursor.cursor
            if not self.upsert:
                new = ~known
                try:
                    with transaction.atomic():  # a savepoint: a visit that exists after all undoes only this
                        if new.any():
                            ids[new] = self._visits_copy(raw, uuids[new], batch.started[new], batch.last[new])
                except psycopg2.IntegrityError:
                    self.upsert = True
                else:
                    if known.any():
                        self._visits_extend(raw, ids[known], batch.started[known], batch.last[known])
                    stats.visits_created += int(new.sum())
                    self.recent = (uuids, ids)
                    return ids, new
            ids, created = self._visits_upsert(raw, batch)
        stats.visits_created += int(created.sum())
        # Back to the copy path once a batch meets no visit from before this import.
        self.upsert = bool((~created & ~known).any())
        self.recent = (uuids, ids)
        return ids, created

    def _visits_copy(self, raw, uuids, started, last) -> np.ndarray:
        if self.sequence is None:
            raw.execute("SELECT pg_get_serial_sequence('tracking_visit', 'id')")
            self.sequence = raw.fetchone()[0]
        out = io.BytesIO()
        raw.copy_expert(
            f"COPY (SELECT nextval('{self.sequence}') FROM generate_series(1, {len(uuids)})) TO STDOUT WITH (FORMAT binary)",
            out,
        )
        ids = _copy_rows(out.getvalue(), np.dtype([("nfields", ">i2"), ("len", ">i4"), ("id", ">i8")]))["id"]
        ids = ids.astype(np.int64)
        rows = np.zeros(len(uuids), dtype=_VISIT_COPY_DTYPE)
        rows["nfields"] = 6
        rows["len_id"], rows["id"] = 8, ids
        rows["len_uuid"], rows["uuid"] = 16, uuids.view("V16")
        rows["len_started"], rows["started"] = 8, started - _PG_EPOCH_US
        rows["len_last"], rows["last"] = 8, last - _PG_EPOCH_US
        rows["len_staff"] = 1
        rows["len_source"], rows["source"] = len(Visit.Source.IMPORT.value), Visit.Source.IMPORT.value.encode()
        raw.copy_expert(
            "COPY tracking_visit (id, uuid, started, last_seen, is_staff, source) FROM STDIN WITH (FORMAT binary)",
            _copy_data([rows]), size=_COPY_READ,
        )
        return ids

    def _visits_extend(self, raw, ids, started, last) -> None:
        """Lock visits from before this batch (their events are checked against the table, so no
        concurrent import may add to them meanwhile) and extend their time span where it grows."""
        raw.execute("SELECT id FROM tracking_visit WHERE id = ANY(%s) ORDER BY id FOR UPDATE", [ids.tolist()])
        raw.execute(
            "UPDATE tracking_visit v SET started = LEAST(v.started, s.started), last_seen = GREATEST(v.last_seen, s.last_seen) "
            "FROM (SELECT unnest(%s::bigint[]) AS id, "
            "timestamptz 'epoch' + unnest(%s::bigint[]) * interval '1 microsecond' AS started, "
            "timestamptz 'epoch' + unnest(%s::bigint[]) * interval '1 microsecond' AS last_seen) s "
            "WHERE v.id = s.id AND (s.started < v.started OR s.last_seen > v.last_seen)",
            [ids.tolist(), started.tolist(), last.tolist()],
        )

    def _visits_upsert(self, raw, batch: Batch) -> tuple[np.ndarray, np.ndarray]:
        """Every session's visit by uuid, created where missing, time span extended where it grows;
        all of them locked (ON CONFLICT DO UPDATE locks even the rows it leaves unchanged)."""
        n = len(batch.uuids)
        rows = np.zeros(n, dtype=_VISIT_STAGE_DTYPE)
        rows["nfields"] = 4
        rows["len_ord"], rows["ord"] = 4, np.arange(n, dtype=np.int32)
        rows["len_uuid"], rows["uuid"] = 16, batch.uuids.view("V16")
        rows["len_started"], rows["started"] = 8, batch.started - _PG_EPOCH_US
        rows["len_last"], rows["last"] = 8, batch.last - _PG_EPOCH_US
        raw.execute(
            "CREATE TEMP TABLE IF NOT EXISTS _import_visit "
            "(ord integer, uuid uuid, started timestamptz, last_seen timestamptz) ON COMMIT DELETE ROWS"
        )
        raw.execute("TRUNCATE _import_visit")
        raw.copy_expert("COPY _import_visit FROM STDIN WITH (FORMAT binary)", _copy_data([rows]), size=_COPY_READ)
        raw.execute(_INDEX_PROBES_ONLY)
        raw.execute(
            "WITH up AS (INSERT INTO tracking_visit (uuid, started, last_seen, user_id, is_staff, source) "
            "SELECT uuid, started, last_seen, NULL, false, 'import' FROM _import_visit ORDER BY uuid "
            "ON CONFLICT (uuid) DO UPDATE SET started = LEAST(tracking_visit.started, EXCLUDED.started), "
            "last_seen = GREATEST(tracking_visit.last_seen, EXCLUDED.last_seen) "
            "WHERE EXCLUDED.started < tracking_visit.started OR EXCLUDED.last_seen > tracking_visit.last_seen "
            "RETURNING id, xmax = 0 AS created) "
            "SELECT id FROM up WHERE created"
        )
        created_ids = np.fromiter((r[0] for r in raw.fetchall()), dtype=np.int64)
        out = io.BytesIO()
        raw.copy_expert(
            "COPY (SELECT v.id FROM _import_visit s JOIN tracking_visit v ON v.uuid = s.uuid ORDER BY s.ord) "
            "TO STDOUT WITH (FORMAT binary)",
            out,
        )
        ids = _copy_rows(out.getvalue(), np.dtype([("nfields", ">i2"), ("len", ">i4"), ("id", ">i8")]))["id"]
        ids = ids.astype(np.int64)
        return ids, np.isin(ids, created_ids)

    # events
    def events(self, batch: Batch, visits, products, fresh) -> int:
        direct, staged = [], []
        for g in batch.groups:
            g.rows["visit"] = visits[g.session]
            g.rows["product"] = products[g.item]
            mine = fresh[g.session]
            if mine.all():
                direct.append(g.rows)
            elif not mine.any():
                staged.append(g.rows)
            else:
                direct.append(g.rows[mine])
                staged.append(g.rows[~mine])
        inserted = 0
        with connection.cursor() as cursor:
            raw = cursor.cursor
            if direct:
                raw.copy_expert(
                    f"COPY tracking_event ({EVENT_COPY_COLUMNS}) FROM STDIN WITH (FORMAT binary)",
                    _copy_data(direct), size=_COPY_READ,
                )
                inserted += sum(len(rows) for rows in direct)
            if staged:
                raw.execute(
                    "CREATE TEMP TABLE IF NOT EXISTS _import_event (visit_id bigint, event_type varchar(16), "
                    "product_id bigint, source varchar(32), position integer, model_version varchar(64), "
                    "history_length integer, timestamp timestamptz, user_id integer, is_staff boolean, "
                    "import_seq smallint) ON COMMIT DELETE ROWS"
                )
                raw.execute("TRUNCATE _import_event")
                raw.copy_expert("COPY _import_event FROM STDIN WITH (FORMAT binary)", _copy_data(staged), size=_COPY_READ)
                raw.execute(_INDEX_PROBES_ONLY)
                raw.execute(
                    f"INSERT INTO tracking_event ({EVENT_COPY_COLUMNS}) SELECT {EVENT_COPY_COLUMNS} FROM _import_event s "
                    "WHERE NOT EXISTS (SELECT 1 FROM tracking_event e WHERE e.visit_id = s.visit_id "
                    "AND e.timestamp = s.timestamp AND e.product_id = s.product_id AND e.event_type = s.event_type "
                    "AND e.import_seq = s.import_seq)"
                )
                inserted += raw.rowcount
        return inserted


_COPY_READ = 1 << 20  # bytes psycopg2 reads from the COPY data at a time
# For the rest of the block's transaction: the joins of a staging table with the visit or event
# table are index probes of sorted keys; the planner, without statistics of the staging table,
# may pick a hash or merge join, which reads the whole visit or event table for every block.
_INDEX_PROBES_ONLY = "SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off"
_VISIT_COPY_DTYPE = np.dtype(
    [("nfields", ">i2"), ("len_id", ">i4"), ("id", ">i8"), ("len_uuid", ">i4"), ("uuid", "V16"),
     ("len_started", ">i4"), ("started", ">i8"), ("len_last", ">i4"), ("last", ">i8"), ("len_staff", ">i4"),
     ("staff", "?"), ("len_source", ">i4"), ("source", "S6")]
)
_VISIT_STAGE_DTYPE = np.dtype(
    [("nfields", ">i2"), ("len_ord", ">i4"), ("ord", ">i4"), ("len_uuid", ">i4"), ("uuid", "V16"),
     ("len_started", ">i4"), ("started", ">i8"), ("len_last", ">i4"), ("last", ">i8")]
)


def _copy_data(parts: list[np.ndarray]) -> io.BytesIO:
    """Binary COPY data of rows already laid out as structured arrays."""
    return io.BytesIO(b"".join([_COPY_HEADER, *(p.tobytes() for p in parts), _COPY_TRAILER]))


def _copy_rows(data: bytes, dtype: np.dtype) -> np.ndarray:
    """Rows of a binary ``COPY ... TO STDOUT`` of fixed-width columns without NULLs."""
    extension = int.from_bytes(data[15:19], "big")
    return np.frombuffer(data[19 + extension : len(data) - 2], dtype=dtype)


# --- The import ----------------------------------------------------------------------------

def import_file(
    path: str,
    fmt: str = "auto",
    *,
    strict: bool = False,
    progress: bool = False,
    block_bytes: int = BLOCK_BYTES,
    on_block: Callable[[ImportStats], None] | None = None,
    ledger: bool = True,
) -> ImportStats:
    """Import a click log; see ``tracking.services.events_import``."""
    started = time.perf_counter()
    layout = detect_layout(path, fmt)
    stats = ImportStats(path=str(path), format=layout.fmt)
    size = os.path.getsize(path)
    if strict:
        # Validate the whole file before writing anything, so a bad file leaves no trace.
        for _, _, errors, rows, _ in read_events(path, layout, block_bytes):
            stats.rows_read += rows
            _add_errors(stats, errors)
        if stats.skipped:
            stats.strict_failed = True
            stats.seconds = time.perf_counter() - started
            return stats
        stats.rows_read = 0
    writer = (_PostgresWriter if connection.vendor == "postgresql" else _Writer)(layout.fmt)
    hashes = []
    bar = _progress(size, progress)
    try:
        t = time.perf_counter()
        for block in _prefetched(_prepared_blocks(path, layout, block_bytes)):
            stats.timed("parse", t)
            stats.rows_read += block.rows
            _add_errors(stats, block.errors)
            hashes.append(block.batch.session_hashes())
            # Only clean blocks go into the ledger, so bad rows are reported on every import.
            clean = ledger and not block.errors and block.rows == len(block.batch)
            for attempt in range(_DEADLOCK_TRIES):
                counts = [getattr(stats, name) for name in _COUNTS]
                try:
                    with transaction.atomic():
                        writer.write(block.batch, stats, block.digest if clean else None)
                        t = time.perf_counter()
                    break
                except (DatabaseError, psycopg2.Error) as exc:
                    # Two imports of overlapping files can deadlock on the visits they share;
                    # PostgreSQL aborts one, which writes its block again.
                    if _pgcode(exc) != "40P01" or attempt == _DEADLOCK_TRIES - 1:
                        raise
                    for name, value in zip(_COUNTS, counts):
                        setattr(stats, name, value)
                    writer.reset()
            t = stats.timed("commit", t)
            writer.committed()
            t = stats.timed("summarise", t)
            if bar is not None:
                bar.update(block.consumed - bar.n)
            if on_block:
                on_block(stats)
    finally:
        if bar is not None:
            bar.close()
    stats.sessions = int(len(np.unique(np.concatenate(hashes)))) if hashes else 0
    stats.seconds = time.perf_counter() - started
    return stats


_DEADLOCK_TRIES = 3
_COUNTS = ("imported", "duplicates", "visits_created", "products_created")


def _pgcode(exc: BaseException) -> str | None:
    """The SQLSTATE of a database error, raised by psycopg2 or wrapped by Django."""
    return getattr(exc, "pgcode", None) or getattr(exc.__cause__, "pgcode", None)


def _prefetched(items: Iterator, depth: int = 1) -> Iterator:
    """Iterate ``items`` in a background thread, ``depth`` items ahead: the next block is read and
    parsed (pandas and numpy release the GIL for much of it) while the database writes this one,
    whose COPY and INSERT wait on the server with the GIL released. Memory: depth + 1 blocks."""
    import queue
    import threading

    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def run():
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        q.put(("item", item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(("done", done))
        except BaseException as exc:  # re-raised in the consumer
            q.put(("error", exc))

    thread = threading.Thread(target=run, name="import-reader", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = q.get()
            if kind == "done":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        thread.join(timeout=5)


def _add_errors(stats: ImportStats, errors: list[RowError]) -> None:
    stats.skipped += len(errors)
    room = MAX_ERRORS_LISTED - len(stats.errors)
    if room > 0:
        stats.errors.extend(errors[:room])


def _progress(total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc="import", dynamic_ncols=True)


def visit_uuid_for(fmt: str, session) -> uuid.UUID:
    """The visit uuid an imported session gets: uuid5 of "format:session" (re-imports find the same visit)."""
    return uuid.uuid5(VISIT_NAMESPACE, f"{fmt}:{session}")


def _visit_uuid_bytes(fmt: str, sessions) -> bytes:
    """uuid5(VISIT_NAMESPACE, "fmt:session").bytes for many sessions, concatenated (hashlib, no UUID objects)."""
    ns = VISIT_NAMESPACE.bytes
    prefix = f"{fmt}:"
    sha1 = hashlib.sha1
    raw = bytearray(b"".join(sha1(ns + (prefix + str(s)).encode()).digest()[:16] for s in sessions))
    arr = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 16)
    arr[:, 6] = (arr[:, 6] & 0x0F) | 0x50  # version 5
    arr[:, 8] = (arr[:, 8] & 0x3F) | 0x80  # RFC 4122 variant
    return bytes(raw)


