"""Streaming importers for real click logs (YOOCHOOSE, GRU4Rec TSV, REES46) into visits and events.

Files are read in blocks of whole lines; each block is parsed column-wise with pandas' C parser
(a fast path that assumes a clean block, and a careful path that finds every bad line when it is
not), validated with numpy, and written with binary ``COPY`` into a staging table followed by one
``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` (PostgreSQL) or ``bulk_create`` (other databases).
Memory stays flat: one block at a time, plus the item id -> product pk map.
"""
from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone as dt_timezone

import numpy as np
import pandas as pd
import psycopg2
from django.db import IntegrityError, connection, transaction
from django.db.models import Max

from catalog.models import Product
from catalog.services import product_stubs_ensure

from .models import Event, EventType, Visit

FORMATS = ("yoochoose", "gru4rec", "rees46")
EVENT_TYPES = [value for value, _ in EventType.choices]
TYPE_CODE = {value: i for i, value in enumerate(EVENT_TYPES)}
# Namespace of the deterministic visit uuids of imported sessions: uuid5(NS, "format:session").
VISIT_NAMESPACE = uuid.UUID("6b1d4c52-8f0a-5e0e-9a53-1d0f2c7d8e41")
REES46_TYPES = {"view": "view", "cart": "add_to_cart", "remove_from_cart": "remove_from_cart", "purchase": "purchase"}
# YOOCHOOSE "clicks" and the RetailRocket TSVs are item-page views: they are stored as views.
DEFAULT_TYPE = {"yoochoose": "view", "gru4rec": "view"}

MIN_TIME_US = int(datetime(1990, 1, 1, tzinfo=dt_timezone.utc).timestamp()) * 1_000_000
_NAT = np.iinfo(np.int64).min
_ID_RE = r"[^\s]{1,64}"
_INT_RE = r"[0-9]{1,18}"
BLOCK_BYTES = 32 * 1024 * 1024
MAX_ERRORS_LISTED = 20


class ImportFormatError(ValueError):
    """The file as a whole is not one of the supported formats."""


@dataclass
class RowError:
    line: int
    message: str

    def __str__(self):
        return f"line {self.line}: {self.message}"


@dataclass
class Chunk:
    """Valid rows of one block, column-wise."""

    session: np.ndarray  # int64 or object (str)
    item: np.ndarray  # int64 or object (str)
    time_us: np.ndarray  # int64 microseconds since the epoch, UTC
    type_code: np.ndarray  # int16 index into EVENT_TYPES
    category: np.ndarray | None = None  # object (str), "" when unknown

    def __len__(self):
        return len(self.time_us)


@dataclass
class FileLayout:
    fmt: str
    sep: str
    header: bool
    columns: list[str]  # names of the file's columns, in order
    time_unit: str = ""  # gru4rec: "s" or "ms"


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


# --- Layout detection ----------------------------------------------------------------------

def _first_line(path: str) -> str:
    with open(path, "rb") as f:
        for raw in f:
            text = raw.decode("utf-8-sig", errors="replace").strip("\r\n")
            if text.strip():
                return text
    raise ImportFormatError(f"{path} has no data")


def _looks_like_iso(value: str) -> bool:
    return bool(re.match(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}", value))


def detect_layout(path: str, fmt: str = "auto") -> FileLayout:
    """Separator, header, column order and (for TSVs) the time unit of a log file."""
    if fmt not in FORMATS + ("auto",):
        raise ImportFormatError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)} or auto")
    line = _first_line(path)
    sep = "\t" if line.count("\t") >= max(line.count(","), 1) else ","
    fields = [f.strip() for f in line.split(sep)]
    lowered = [f.lower() for f in fields]
    if fmt == "auto":
        if "event_time" in lowered and "user_session" in lowered:
            fmt = "rees46"
        elif {"sessionid", "itemid"} <= set(lowered):
            fmt = "gru4rec"
        elif len(fields) == 4 and sep == "," and _looks_like_iso(fields[1]):
            fmt = "yoochoose"
        elif len(fields) == 3:
            fmt = "gru4rec"
        else:
            raise ImportFormatError(f"cannot tell the format of {path} from its first line: {line[:120]!r}")
    if fmt == "yoochoose":
        header = not fields[0].isdigit()
        layout = FileLayout(fmt, sep, header, ["session", "time", "item", "category"])
    elif fmt == "gru4rec":
        header = "sessionid" in lowered
        names = {"sessionid": "session", "itemid": "item", "time": "time", "timestamp": "time"}
        columns = [names.get(f, f"_{i}") for i, f in enumerate(lowered)] if header else ["session", "item", "time"]
        if not {"session", "item", "time"} <= set(columns):
            raise ImportFormatError(f"{path}: a GRU4Rec TSV needs SessionId, ItemId and Time columns")
        layout = FileLayout(fmt, sep, header, columns)
        layout.time_unit = _detect_time_unit(path, layout)
    else:
        header = "event_time" in lowered
        default = ["time", "event_type", "item", "category_id", "category", "brand", "price", "user_id", "session"]
        names = {"event_time": "time", "product_id": "item", "category_code": "category", "user_session": "session"}
        columns = [names.get(f, f) for f in lowered] if header else default
        if not {"time", "event_type", "item", "session"} <= set(columns):
            raise ImportFormatError(f"{path}: a REES46 CSV needs event_time, event_type, product_id, user_session")
        layout = FileLayout(fmt, sep, header, columns)
    return layout


def _detect_time_unit(path: str, layout: FileLayout) -> str:
    """Unix seconds or milliseconds, from the median of the first rows (ms values are > 1e11)."""
    idx = layout.columns.index("time")
    values = []
    with open(path, encoding="utf-8", errors="replace") as f:
        if layout.header:
            next(f, None)
        for line in f:
            parts = line.rstrip("\r\n").split(layout.sep)
            if len(parts) > idx:
                try:
                    values.append(float(parts[idx]))
                except ValueError:
                    pass
            if len(values) >= 1000:
                break
    if not values:
        return "s"
    return "ms" if float(np.median(values)) > 1e11 else "s"


# --- Parsing -------------------------------------------------------------------------------

def iter_blocks(path: str, block_bytes: int = BLOCK_BYTES) -> Iterator[tuple[bytes, int, int]]:
    """Yield (block of whole lines, 1-based number of its first line, bytes consumed so far)."""
    line_no = 1
    consumed = 0
    rest = b""
    with open(path, "rb") as f:
        while True:
            data = f.read(block_bytes)
            if not data:
                if rest:
                    consumed += len(rest)
                    yield rest + b"\n", line_no, consumed
                return
            data = rest + data
            cut = data.rfind(b"\n")
            if cut < 0:
                rest = data
                continue
            block, rest = data[: cut + 1], data[cut + 1 :]
            consumed += len(block)
            yield block, line_no, consumed
            line_no += block.count(b"\n")


def _read(block: bytes, layout: FileLayout, dtype) -> pd.DataFrame:
    return pd.read_csv(
        io.BytesIO(block),
        sep=layout.sep,
        header=None,
        names=layout.columns,
        dtype=dtype,
        quoting=csv.QUOTE_NONE,
        skip_blank_lines=False,
        keep_default_na=False,
        na_filter=False,
        engine="c",
        encoding="utf-8",
        encoding_errors="replace",
    )


def parse_block(block: bytes, first_line: int, layout: FileLayout) -> tuple[Chunk, list[RowError], int]:
    """Parse one block of whole lines into valid rows, the bad rows' errors and the data-row count."""
    n_lines = block.count(b"\n")
    if layout.fmt in ("yoochoose", "rees46"):
        fast_dtype = {"session": np.int64 if layout.fmt == "yoochoose" else str, "item": np.int64}
    else:
        fast_dtype = {"session": np.int64, "item": np.int64}
    fast_dtype = {**{c: str for c in layout.columns}, **fast_dtype}
    try:
        # Every line must have exactly the expected number of separators (one cheap C-level
        # count), else the careful path finds the lines that do not.
        if block.count(layout.sep.encode()) != n_lines * (len(layout.columns) - 1):
            raise ValueError("field count mismatch")
        df = _read(block, layout, fast_dtype)
        if len(df) != n_lines:
            raise ValueError("line count mismatch")
        lines = np.arange(first_line, first_line + n_lines, dtype=np.int64)
        errors: list[RowError] = []
        typed = True
    except (ValueError, pd.errors.ParserError, OverflowError):
        df, lines, errors = _careful_read(block, first_line, layout)
        typed = False
    chunk, more = _validate(df, lines, layout, typed)
    errors.extend(more)
    errors.sort(key=lambda e: e.line)
    rows = len(lines) + sum(1 for e in errors if e.message.startswith("expected"))
    return chunk, errors, rows


def _careful_read(block: bytes, first_line: int, layout: FileLayout):
    """The slow path: check every line's field count, then read the good lines as strings."""
    sep = layout.sep.encode()
    want = len(layout.columns)
    good: list[bytes] = []
    good_lines: list[int] = []
    errors: list[RowError] = []
    for i, raw in enumerate(block.split(b"\n")[:-1]):
        line = raw.rstrip(b"\r")
        if not line.strip():
            continue  # blank lines are not rows
        n = line.count(sep) + 1
        if n != want:
            errors.append(RowError(first_line + i, f"expected {want} fields, got {n}"))
            continue
        good.append(line)
        good_lines.append(first_line + i)
    if good:
        df = _read(b"\n".join(good) + b"\n", layout, {c: str for c in layout.columns})
    else:
        df = pd.DataFrame({c: pd.Series([], dtype=object) for c in layout.columns})
    return df, np.asarray(good_lines, dtype=np.int64), errors


def _strings(series: pd.Series) -> np.ndarray:
    return series.to_numpy(dtype=object)


def _time_us(df: pd.DataFrame, layout: FileLayout) -> np.ndarray:
    col = df["time"]
    if layout.fmt == "gru4rec":
        values = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64)
        scale = 1_000.0 if layout.time_unit == "ms" else 1_000_000.0
        with np.errstate(invalid="ignore", over="ignore"):
            us = np.rint(values * scale)
        ok = np.isfinite(us) & (np.abs(us) < 9e18)
        out = np.full(len(us), _NAT, dtype=np.int64)
        out[ok] = us[ok].astype(np.int64)
        return out
    if layout.fmt == "yoochoose":
        parsed = pd.to_datetime(col, format="ISO8601", errors="coerce", utc=True)
    else:
        parsed = pd.to_datetime(col, format="%Y-%m-%d %H:%M:%S UTC", errors="coerce", utc=True)
    return parsed.dt.tz_convert(None).dt.as_unit("us").to_numpy(dtype="datetime64[us]").view(np.int64)


def _validate(df: pd.DataFrame, lines: np.ndarray, layout: FileLayout, typed: bool):
    n = len(df)
    bad = np.zeros(n, dtype=bool)
    messages: list[tuple[np.ndarray, str]] = []

    def flag(mask: np.ndarray, message: str):
        mask = mask & ~bad
        if mask.any():
            messages.append((mask.copy(), message))
            bad[mask] = True

    def id_column(name: str, integer: bool):
        if typed and df[name].dtype.kind == "i":
            values = df[name].to_numpy(dtype=np.int64)
            flag(values < 0, f"{name} id must be a non-negative integer")
            return values
        text = df[name].astype(str).str.strip()
        pattern = _INT_RE if integer else _ID_RE
        ok = text.str.fullmatch(pattern).to_numpy(dtype=bool)
        flag(~ok, f"bad {name} id" + (" (expected an integer)" if integer else ""))
        if integer:
            values = np.zeros(n, dtype=np.int64)
            values[ok] = text[ok].astype(np.int64).to_numpy()
            return values
        return _strings(text)

    session = id_column("session", integer=layout.fmt == "yoochoose")
    item = id_column("item", integer=layout.fmt in ("yoochoose", "rees46"))
    time_us = _time_us(df, layout)
    max_us = int((time.time() + 86400) * 1_000_000)
    flag(time_us == _NAT, "bad timestamp")
    flag((time_us < MIN_TIME_US) | (time_us > max_us), "timestamp out of range (1990 .. now + 1 day)")
    if layout.fmt == "rees46":
        mapped = df["event_type"].map(lambda v: TYPE_CODE.get(REES46_TYPES.get(str(v).strip(), ""), -1))
        type_code = mapped.to_numpy(dtype=np.int16)
        flag(type_code < 0, "unknown event_type")
    else:
        type_code = np.full(n, TYPE_CODE[DEFAULT_TYPE[layout.fmt]], dtype=np.int16)
    category = None
    if "category" in df.columns:
        category = _strings(df["category"].astype(str).str.strip())
        flag(pd.Series(category).str.len().to_numpy() > 200, "category too long")

    errors = []
    for mask, message in messages:
        errors.extend(RowError(int(line), message) for line in lines[mask])
    keep = ~bad
    chunk = Chunk(
        session=session[keep],
        item=item[keep],
        time_us=time_us[keep],
        type_code=type_code[keep],
        category=category[keep] if category is not None else None,
    )
    return chunk, errors


def read_events(path: str, layout: FileLayout, block_bytes: int = BLOCK_BYTES, *, digests: bool = False):
    """Yield (chunk of valid rows, errors, data rows in the block, bytes consumed) for a whole file,
    and with ``digests`` the block's fingerprint (``block_digest``) as a fifth item."""
    skip_header = layout.header
    for block, first_line, consumed in iter_blocks(path, block_bytes):
        if skip_header:
            cut = block.find(b"\n")
            block, first_line, skip_header = block[cut + 1 :], first_line + 1, False
            if not block:
                continue
        chunk, errors, rows = parse_block(block, first_line, layout)
        if digests:
            yield chunk, errors, rows, consumed, block_digest(block, layout)
        else:
            yield chunk, errors, rows, consumed


def block_digest(block: bytes, layout: FileLayout) -> str:
    """The import ledger's key of a block: its bytes under this format and layout (the same bytes
    read as another format, or with other columns, are other events)."""
    key = f"{layout.fmt}|{layout.sep}|{','.join(layout.columns)}|{layout.time_unit}".encode()
    return hashlib.blake2b(block, digest_size=20, key=key[:64]).hexdigest()


# --- Writing -------------------------------------------------------------------------------

def _occurrence(visit_ids: np.ndarray, product_ids: np.ndarray, time_us: np.ndarray, type_code: np.ndarray):
    """0 for the first copy of a (visit, product, time, type) row in the chunk, 1 for the next, ..."""
    seq = np.zeros(len(time_us), dtype=np.int64)
    if len(time_us) < 2:
        return seq
    order = np.lexsort((type_code, product_ids, time_us, visit_ids))
    same = np.ones(len(order), dtype=bool)
    same[0] = False
    for col in (visit_ids, time_us, product_ids, type_code):
        s = col[order]
        same[1:] &= s[1:] == s[:-1]
    if not same.any():
        return seq
    # run-length position inside each group of equal keys
    idx = np.arange(len(order))
    starts = np.where(~same, idx, 0)
    np.maximum.accumulate(starts, out=starts)
    seq[order] = idx - starts
    return seq


class _Writer:
    """Maps sessions and items to visits and products and writes one chunk of events."""

    def __init__(self, fmt: str):
        self.fmt = fmt
        self.products: dict[str, int] = {}
        self.session_hashes: list[np.ndarray] = []
        self.postgres = connection.vendor == "postgresql"
        self.created_visits = np.zeros(0, dtype=np.int64)
        # A clean block the ledger says was imported: kept (parsed) until the next block, which
        # needs its rows to carry occurrence numbers over the block boundary.
        self.pending: Chunk | None = None

    # products
    def product_ids(self, chunk: Chunk, stats: ImportStats) -> np.ndarray:
        codes, uniques = pd.factorize(chunk.item)
        keys = [str(u) for u in uniques]
        missing = [k for k in keys if k not in self.products]
        if missing:
            categories = {}
            if chunk.category is not None:
                # The first known category of each new item ("0" means unknown in YOOCHOOSE).
                wanted = set(missing)
                known = (chunk.category != "") & (chunk.category != "0")
                first = pd.DataFrame({"item": chunk.item[known], "category": chunk.category[known]})
                first = first.drop_duplicates("item")
                for ext, cat in zip(first["item"].astype(str), first["category"]):
                    if ext in wanted:
                        categories[ext] = cat
            before = Product.objects.aggregate(m=Max("pk"))["m"] or 0
            found = product_stubs_ensure(missing, categories)
            stats.products_created += sum(1 for pk in found.values() if pk > before)
            self.products.update(found)
        lookup = np.fromiter((self.products[k] for k in keys), dtype=np.int64, count=len(keys))
        return lookup[codes]

    # visits
    def visit_ids(self, chunk: Chunk, stats: ImportStats, *, count: bool = True) -> np.ndarray:
        codes, uniques = pd.factorize(chunk.session)
        keys = _visit_uuid_bytes(self.fmt, uniques)
        if count:
            self.session_hashes.append(np.frombuffer(keys, dtype="V16").view(np.int64)[::2].copy())
        started = np.full(len(uniques), np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(started, codes, chunk.time_us)
        last = np.full(len(uniques), _NAT, dtype=np.int64)
        np.maximum.at(last, codes, chunk.time_us)
        if self.postgres:
            ids = self._visits_postgres(keys, started, last, stats)
            self.fresh = self.created_visits[codes]  # rows of visits this block created
        else:
            uuids = [uuid.UUID(bytes=keys[i : i + 16]) for i in range(0, len(keys), 16)]
            ids = self._visits_generic(uuids, started, last, stats)
        return ids[codes]

    def _visits_postgres(self, keys: bytes, started, last, stats) -> np.ndarray:
        n = len(started)
        rows = np.empty(n, dtype=_VISIT_COPY_DTYPE)
        rows["nfields"] = 4
        rows["len_ord"], rows["ord"] = 4, np.arange(n, dtype=np.int32)
        rows["len_uuid"] = 16
        rows["uuid"] = np.frombuffer(keys, dtype="V16")
        rows["len_started"], rows["started"] = 8, started - _PG_EPOCH_US
        rows["len_last"], rows["last"] = 8, last - _PG_EPOCH_US
        with connection.cursor() as cursor:
            raw = cursor.cursor
            raw.execute(
                "CREATE TEMP TABLE IF NOT EXISTS _import_visit "
                "(ord integer, uuid uuid, started timestamptz, last_seen timestamptz) ON COMMIT DELETE ROWS"
            )
            raw.execute("TRUNCATE _import_visit")
            raw.copy_expert("COPY _import_visit FROM STDIN WITH (FORMAT binary)", _binary_copy(rows))
        # Measured: a plain INSERT of the anti-join in uuid order instead of this upsert was no
        # faster here (1M rows: 5.9 s of visits either way), so the simpler statement stays.
        result = self._visits_upsert()
        ids = np.fromiter((r[0] for r in result), dtype=np.int64, count=n)
        created = np.fromiter((r[1] for r in result), dtype=bool, count=n)
        stats.visits_created += int(created.sum())
        self.created_visits = created
        return ids

    def _visits_upsert(self) -> list:
        with connection.cursor() as cursor:
            raw = cursor.cursor
            # Only visits whose time span grows are rewritten, so a re-import updates nothing. One
            # statement: the upsert's RETURNING gives new and grown visits (xmax = 0: inserted
            # here), the statement's snapshot of tracking_visit the unchanged ones.
            raw.execute(
                "WITH up AS (INSERT INTO tracking_visit (uuid, started, last_seen, user_id, is_staff, source) "
                "SELECT uuid, started, last_seen, NULL, false, 'import' FROM _import_visit "
                "ON CONFLICT (uuid) DO UPDATE SET started = LEAST(tracking_visit.started, EXCLUDED.started), "
                "last_seen = GREATEST(tracking_visit.last_seen, EXCLUDED.last_seen) "
                "WHERE EXCLUDED.started < tracking_visit.started OR EXCLUDED.last_seen > tracking_visit.last_seen "
                "RETURNING id, uuid, (xmax = 0) AS created) "
                "SELECT COALESCE(up.id, v.id), COALESCE(up.created, false) FROM _import_visit s "
                "LEFT JOIN up ON up.uuid = s.uuid LEFT JOIN tracking_visit v ON v.uuid = s.uuid ORDER BY s.ord"
            )
            return raw.fetchall()

    def _visits_generic(self, uuids, started, last, stats) -> np.ndarray:
        to_dt = lambda us: datetime(1970, 1, 1, tzinfo=dt_timezone.utc) + timedelta(microseconds=int(us))  # noqa: E731
        ids: dict[uuid.UUID, int] = {}
        for start in range(0, len(uuids), 500):
            part = uuids[start : start + 500]
            existing = {v.uuid: v for v in Visit.objects.filter(uuid__in=part)}
            new, changed = [], []
            for j, u in enumerate(part):
                s, e = to_dt(started[start + j]), to_dt(last[start + j])
                v = existing.get(u)
                if v is None:
                    new.append(Visit(uuid=u, started=s, last_seen=e, source=Visit.Source.IMPORT))
                elif s < v.started or e > v.last_seen:
                    v.started, v.last_seen = min(s, v.started), max(e, v.last_seen)
                    changed.append(v)
            Visit.objects.bulk_create(new, ignore_conflicts=True)
            Visit.objects.bulk_update(changed, ["started", "last_seen"])
            stats.visits_created += len(new)
            ids.update(Visit.objects.filter(uuid__in=part).values_list("uuid", "pk"))
        return np.fromiter((ids[u] for u in uuids), dtype=np.int64, count=len(uuids))

    # events
    def write(self, chunk: Chunk, stats: ImportStats, digest: str | None = None) -> None:
        if not len(chunk):
            return
        if self.postgres:
            # Losing the last blocks of an import to a server crash is harmless (re-importing is
            # idempotent), so the import does not wait for each commit's WAL flush.
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit = off")
            if digest is not None and not self._ledger_claim(digest, len(chunk)):
                # Imported before (committed): nothing of this block can be missing.
                stats.duplicates += len(chunk)
                codes, uniques = pd.factorize(chunk.session)
                keys = _visit_uuid_bytes(self.fmt, uniques)
                self.session_hashes.append(np.frombuffer(keys, dtype="V16").view(np.int64)[::2].copy())
                self.pending, self.previous = chunk, None
                return
        if self.pending is not None:
            # The previous block was skipped: its rows still number the identical rows that
            # continue across the boundary into this one.
            pending, self.pending = self.pending, None
            p_products = self.product_ids(pending, stats)
            p_visits = self.visit_ids(pending, stats, count=False)
            p_seq = _occurrence(p_visits, p_products, pending.time_us, pending.type_code)
            self.previous = None
            self._continue_occurrences(p_visits, p_products, pending.time_us, pending.type_code, p_seq)
        t = time.perf_counter()
        products = self.product_ids(chunk, stats)
        t = stats.timed("products", t)
        visits = self.visit_ids(chunk, stats)
        t = stats.timed("visits", t)
        seq = _occurrence(visits, products, chunk.time_us, chunk.type_code)
        seq = self._continue_occurrences(visits, products, chunk.time_us, chunk.type_code, seq)
        if (seq > 32767).any():
            raise ValueError("more than 32767 identical rows in one block")
        inserted = (self._events_postgres if self.postgres else self._events_generic)(
            visits, products, chunk.time_us, chunk.type_code, seq
        )
        stats.timed("events", t)
        stats.imported += inserted
        stats.duplicates += len(chunk) - inserted
        if digest is not None and self.postgres:
            with connection.cursor() as cursor:
                cursor.execute("UPDATE tracking_importblock SET imported = %s WHERE digest = %s", [inserted, digest])

    def _ledger_claim(self, digest: str, rows: int) -> bool:
        """Record the block in the import ledger (in the block's transaction); False when it is
        already there. A concurrent import of the same block waits here for the other
        transaction: if that one commits, this block is skipped; if it rolls back, this one
        imports it."""
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO tracking_importblock (digest, format, rows, imported, created) "
                "VALUES (%s, %s, %s, 0, now()) ON CONFLICT (digest) DO NOTHING RETURNING id",
                [digest, self.fmt, rows],
            )
            return cursor.fetchone() is not None

    def _continue_occurrences(self, visits, products, time_us, type_code, seq):
        """Carry occurrence numbers over from the previous block, so identical rows on both sides of
        a block boundary are both kept. (Identical rows further apart than one block, about a
        million rows, count as one re-delivered event.)"""
        key = (visits * np.int64(0x9E3779B1) ^ products * np.int64(0x85EBCA77) ^ time_us
               ^ type_code.astype(np.int64) * np.int64(0x27D4EB2F))
        prev, self.previous = getattr(self, "previous", None), None
        if prev is not None:
            candidates = np.isin(key, prev["key"])
            if candidates.any():
                cols = ["visit", "product", "time", "type"]
                mine = pd.DataFrame({"visit": visits, "product": products, "time": time_us,
                                     "type": type_code.astype(np.int64)})[candidates]
                theirs = pd.DataFrame({c: prev[c] for c in cols + ["seq"]})
                theirs = theirs[np.isin(prev["key"], key[candidates])]
                next_seq = (theirs.groupby(cols)["seq"].max() + 1).rename("offset").reset_index()
                offset = mine.merge(next_seq, how="left", on=cols)["offset"].fillna(0).to_numpy(dtype=np.int64)
                seq = seq.copy()
                seq[candidates] += offset
        self.previous = {"key": key, "visit": visits, "product": products, "time": time_us,
                         "type": type_code.astype(np.int64), "seq": seq}
        return seq

    def _events_postgres(self, visits, products, time_us, type_code, seq) -> int:
        rows = np.empty(len(visits), dtype=_EVENT_COPY_DTYPE)
        rows["nfields"] = 6
        rows["len_visit"], rows["visit"] = 8, visits
        rows["len_product"], rows["product"] = 8, products
        rows["len_type"], rows["type"] = 2, type_code
        rows["len_ts"], rows["ts"] = 8, time_us - _PG_EPOCH_US
        rows["len_seq"], rows["seq"] = 2, seq
        fresh = self.fresh.copy()
        rows["len_fresh"], rows["fresh"] = 1, fresh
        types_array = "ARRAY[" + ",".join(f"'{t}'" for t in EVENT_TYPES) + "]::varchar[]"
        with connection.cursor() as cursor:
            raw = cursor.cursor
            raw.execute(
                "CREATE TEMP TABLE IF NOT EXISTS _import_event (visit_id bigint, product_id bigint, "
                "type smallint, ts timestamptz, seq smallint, fresh boolean) ON COMMIT DELETE ROWS"
            )
            columns = (
                "INSERT INTO tracking_event (visit_id, event_type, product_id, source, position, model_version, "
                "history_length, timestamp, user_id, is_staff, import_seq) "
                f"SELECT visit_id, ({types_array})[type + 1], product_id, '', NULL, '', NULL, ts, NULL, false, seq "
                "FROM _import_event "
            )
            # Visits created by this block have no events yet (they are uncommitted, so no live
            # request can have added any), so their rows are copied straight into the event table:
            # no staging copy, no speculative ON CONFLICT insertion. Should a concurrent import of
            # the same file create them too, the unique index refuses the copy and the block's rows
            # go through the staging table with ON CONFLICT DO NOTHING instead.
            inserted = 0
            if fresh.any():
                try:
                    with transaction.atomic():  # a savepoint
                        raw.copy_expert(
                            "COPY tracking_event (visit_id, event_type, product_id, source, position, model_version, "
                            "history_length, timestamp, user_id, is_staff, import_seq) FROM STDIN WITH (FORMAT binary)",
                            _event_copy(visits[fresh], products[fresh], type_code[fresh], time_us[fresh], seq[fresh]),
                        )
                        inserted = int(fresh.sum())
                except (IntegrityError, psycopg2.IntegrityError):
                    fresh[:] = False
                    inserted = 0
            if not fresh.all():
                rest = ~fresh
                rows = rows[rest] if fresh.any() else rows
                raw.execute("TRUNCATE _import_event")
                raw.copy_expert("COPY _import_event FROM STDIN WITH (FORMAT binary)", _binary_copy(rows))
                raw.execute(columns + "ON CONFLICT DO NOTHING")
                inserted += raw.rowcount
            return inserted

    def _events_generic(self, visits, products, time_us, type_code, seq) -> int:
        epoch = datetime(1970, 1, 1, tzinfo=dt_timezone.utc)
        before = Event.objects.count()
        batch = []
        for v, p, t, c, s in zip(visits.tolist(), products.tolist(), time_us.tolist(), type_code.tolist(), seq.tolist()):
            batch.append(
                Event(
                    visit_id=v, product_id=p, timestamp=epoch + timedelta(microseconds=t),
                    event_type=EVENT_TYPES[c], import_seq=s, history_length=None,
                )
            )
            if len(batch) >= 5000:
                Event.objects.bulk_create(batch, ignore_conflicts=True)
                batch = []
        Event.objects.bulk_create(batch, ignore_conflicts=True)
        return Event.objects.count() - before

    def sessions(self) -> int:
        if not self.session_hashes:
            return 0
        return int(len(np.unique(np.concatenate(self.session_hashes))))


_PG_EPOCH_US = 946_684_800 * 1_000_000  # PostgreSQL binary timestamps count from 2000-01-01
_VISIT_COPY_DTYPE = np.dtype(
    [("nfields", ">i2"), ("len_ord", ">i4"), ("ord", ">i4"), ("len_uuid", ">i4"), ("uuid", "V16"), ("len_started", ">i4"), ("started", ">i8"),
     ("len_last", ">i4"), ("last", ">i8")]
)
_EVENT_COPY_DTYPE = np.dtype(
    [("nfields", ">i2"), ("len_visit", ">i4"), ("visit", ">i8"), ("len_product", ">i4"), ("product", ">i8"),
     ("len_type", ">i4"), ("type", ">i2"), ("len_ts", ">i4"), ("ts", ">i8"), ("len_seq", ">i4"), ("seq", ">i2"),
     ("len_fresh", ">i4"), ("fresh", "?")]
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


def _event_copy(visits, products, type_code, time_us, seq) -> io.BytesIO:
    """Binary COPY data for tracking_event, built column-wise (rows grouped by event type, whose
    name is the only variable-length field; the order of rows in a COPY does not matter)."""
    # In (type, visit, time) order: new visits have the highest ids, so their rows go to the right
    # edge of the (visit, timestamp, ...) index in key order instead of to random leaf pages.
    order = np.lexsort((time_us, visits, type_code))
    visits, products, type_code, time_us, seq = visits[order], products[order], type_code[order], time_us[order], seq[order]
    parts = [b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(8, "big")]
    for code in np.unique(type_code):
        name = EVENT_TYPES[int(code)].encode()
        mask = type_code == code
        rows = np.empty(int(mask.sum()), dtype=_event_copy_dtype(len(name)))
        rows["nfields"] = 11
        rows["len_visit"], rows["visit"] = 8, visits[mask]
        rows["len_type"], rows["type"] = len(name), name
        rows["len_product"], rows["product"] = 8, products[mask]
        rows["len_source"], rows["len_model"] = 0, 0
        rows["len_position"], rows["len_history"], rows["len_user"] = -1, -1, -1
        rows["len_ts"], rows["ts"] = 8, time_us[mask] - _PG_EPOCH_US
        rows["len_staff"], rows["staff"] = 1, False
        rows["len_seq"], rows["seq"] = 2, seq[mask]
        parts.append(rows.tobytes())
    parts.append(b"\xff\xff")
    return io.BytesIO(b"".join(parts))


def _binary_copy(rows: np.ndarray) -> io.BytesIO:
    header = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
    return io.BytesIO(header + rows.tobytes() + b"\xff\xff")


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
        for _, errors, rows, _ in read_events(path, layout, block_bytes):
            stats.rows_read += rows
            _add_errors(stats, errors)
        if stats.skipped:
            stats.strict_failed = True
            stats.seconds = time.perf_counter() - started
            return stats
        stats.rows_read = 0
    writer = _Writer(layout.fmt)
    bar = _progress(size, progress)
    try:
        t = time.perf_counter()
        blocks = _prefetched(read_events(path, layout, block_bytes, digests=True))
        for chunk, errors, rows, consumed, digest in blocks:
            stats.timed("parse", t)
            stats.rows_read += rows
            _add_errors(stats, errors)
            # Only clean blocks go into the ledger, so bad rows are reported on every import.
            use_ledger = ledger and not errors and rows == len(chunk)
            with transaction.atomic():
                writer.write(chunk, stats, digest if use_ledger else None)
            t = time.perf_counter()
            if bar is not None:
                bar.update(consumed - bar.n)
            if on_block:
                on_block(stats)
    finally:
        if bar is not None:
            bar.close()
    stats.sessions = writer.sessions()
    stats.seconds = time.perf_counter() - started
    return stats


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


