"""The click-log formats: the readers of every supported file format, and the TSV writer.

Formats: YOOCHOOSE raw clicks, GRU4Rec TSV (RetailRocket's processed views, the shop's own export;
seconds, ms, us, ns or ISO 8601, detected) and the REES46 event log. One layout detection
(``detect_layout``: format, separator, header, columns, time unit) serves both readers:

- ``read_events``: a whole file into a ``SessionId, ItemId, Time`` frame, the first bad line
  raising ``DataFormatError`` (the engine CLI, the benchmarks, training on a file);
- ``read_blocks`` / ``parse_block``: the shop's streaming import (tracking), column-wise blocks of
  valid rows plus a ``RowError`` (line number, reason) per bad row.

Both tokenise rows with one function (``tokenise``: the layout's separator, blank lines kept as
rows, numbered by ``line_numbers``; ``field_count`` counts a line's fields), each adding only its
own options: the engine reads quoted fields and types whole columns, the import reads fields
verbatim and only the columns it uses.
"""
from __future__ import annotations

import csv
import io
import os
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone as dt_timezone

import numpy as np
import pandas as pd

from .sessions import COLUMNS, session_time_order, validate_columns
from .types import DataFormatError

FORMATS = ("auto", "yoochoose", "tsv", "rees46")

_ISO_RE = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
# Names accepted for the three columns of a GRU4Rec-style file (compared lower-case, '_' removed).
_HEADER_NAMES = {
    "SessionId": ("sessionid", "session"),
    "ItemId": ("itemid", "item", "productid"),
    "Time": ("time", "timestamp", "ts"),
}
_REES46_COLUMNS = ("event_time", "event_type", "product_id", "user_session")
# REES46's event_time, e.g. "2019-10-01 00:00:00 UTC" (both readers parse it with this format).
REES46_TIME_FORMAT = "%Y-%m-%d %H:%M:%S UTC"


# ------------------------------------------------------------------------------ layout detection
# One detection for both readers: the format, separator, header, column order and (GRU4Rec TSVs)
# time unit, from the first non-blank line (and, for the time unit, the first rows).

IMPORT_FORMATS = ("yoochoose", "gru4rec", "rees46")
# The role of each column a reader uses; a GRU4Rec header's other columns are named "_<index>".
_REES46_NAMES = {"event_time": "time", "product_id": "item", "category_code": "category", "user_session": "session"}
_REES46_DEFAULT = ["time", "event_type", "item", "category_id", "category", "brand", "price", "user_id", "session"]
_ROLES = {"session": "SessionId", "item": "ItemId", "time": "Time"}


class ImportFormatError(DataFormatError):
    """The file as a whole is not one of the supported formats."""


@dataclass
class FileLayout:
    fmt: str  # "yoochoose", "gru4rec" or "rees46"
    sep: str  # "\t", ",", ";", "|" or r"\s+"
    header: bool
    columns: list[str]  # names of the file's columns, in order ("session", "item", "time", ...)
    time_unit: str = ""  # gru4rec: "s", "ms", "us", "ns" or "iso"
    first: int = 1  # number of the first non-blank line (the header, if any)

    @property
    def n_fields(self) -> int:
        return len(self.columns)


def _first_line(path) -> tuple[str, int]:
    """The first non-blank line and its 1-based number."""
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as fh:
        for number, line in enumerate(fh, start=1):
            if line.strip():
                return line.rstrip("\r\n"), number
    raise ImportFormatError("file is empty", path)


def _sniff_sep(line: str, path, first: int) -> str:
    # Tab first: GRU4Rec files are TSV, and a tab never occurs inside an id or a timestamp,
    # while a comma may (a REES46 category path does not, but free text could).
    for sep in ("\t", ",", ";", "|"):
        if len(line.split(sep)) >= 3:
            return sep
    if len(line.split()) >= 3:
        return r"\s+"
    raise ImportFormatError(f"cannot detect the separator: fewer than 3 fields in {line[:80]!r}", path, first)


def _split(line: str, sep: str) -> list[str]:
    if sep == r"\s+":
        return line.split()
    return next(csv.reader(io.StringIO(line), delimiter=sep))


def _header_cols(fields: list[str]) -> dict[str, int] | None:
    norm = [f.strip().strip('"').lower().replace("_", "").replace(" ", "") for f in fields]
    cols = {}
    for col, names in _HEADER_NAMES.items():
        for name in names:
            if name in norm:
                cols[col] = norm.index(name)
                break
    return cols if len(cols) == 3 else None


def _unit_for(magnitude: float) -> str:
    """The unit of numeric unix times of this (median) magnitude: 1.4e9 is seconds, 1.4e12 ms,
    1.4e15 microseconds, 1.4e18 ns."""
    if magnitude >= 1e17:
        return "ns"
    if magnitude >= 1e14:
        return "us"
    if magnitude >= 1e11:
        return "ms"
    return "s"


def detect_layout(path, fmt: str = "auto") -> FileLayout:
    """Format, separator, header, column order and (for GRU4Rec TSVs) the time unit of a log file.

    ``fmt``: ``auto`` (detect), ``yoochoose``, ``gru4rec`` (``tsv`` is the same) or ``rees46``.
    Raises ``ImportFormatError`` (a ``DataFormatError``) naming the file and line."""
    fmt = "gru4rec" if fmt == "tsv" else fmt
    if fmt not in IMPORT_FORMATS + ("auto",):
        raise ImportFormatError(f"unknown format {fmt!r}; expected one of {', '.join(IMPORT_FORMATS)} or auto")
    line, first = _first_line(path)
    sep = _sniff_sep(line, path, first)
    fields = _split(line, sep)
    lowered = [f.strip().lower() for f in fields]
    cols = _header_cols(fields)
    looks_click = len(fields) == 4 and bool(_ISO_RE.match(fields[1].strip()))
    if fmt == "auto":
        if "event_time" in lowered and "user_session" in lowered:
            fmt = "rees46"
        elif cols is not None:
            fmt = "gru4rec"
        elif looks_click:
            fmt = "yoochoose"
        elif len(fields) == 3:
            fmt = "gru4rec"  # a headerless 3-column file: the GRU4Rec column order
        else:
            raise ImportFormatError(
                "unrecognised format: expected a SessionId/ItemId/Time header, a REES46 header or "
                f"YOOCHOOSE clicks; first line: {line[:80]!r}",
                path,
                first,
            )
    if fmt == "yoochoose":
        # A header line, when there is one, has a click's four fields but is not a click.
        header = len(fields) == 4 and not fields[0].strip().isdigit() and not looks_click
        return FileLayout(fmt, sep, header, ["session", "time", "item", "category"], first=first)
    if fmt == "gru4rec":
        if cols is None:
            layout = FileLayout(fmt, sep, False, ["session", "item", "time"], first=first)
        else:
            roles = {i: role for role, name in _ROLES.items() for i in [cols[name]]}
            layout = FileLayout(fmt, sep, True, [roles.get(i, f"_{i}") for i in range(len(fields))], first=first)
        layout.time_unit = _detect_time_unit(path, layout)
        return layout
    header = "event_time" in lowered
    if not header and len(fields) != len(_REES46_DEFAULT):
        raise ImportFormatError(f"not a REES46 log: the header lacks one of {_REES46_COLUMNS}", path, first)
    columns = [_REES46_NAMES.get(f, f) for f in lowered] if header else list(_REES46_DEFAULT)
    if not {"time", "event_type", "item", "session"} <= set(columns):
        raise ImportFormatError(f"not a REES46 log: the header lacks one of {_REES46_COLUMNS}", path, first)
    return FileLayout(fmt, sep, header, columns, first=first)


def _detect_time_unit(path, layout: FileLayout) -> str:
    """ISO 8601 times, or the unit of numeric ones from the median of the first rows."""
    idx = layout.columns.index("time")
    values = []
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as f:
        for number, line in enumerate(f, start=1):
            if number < layout.first + layout.header or not line.strip():
                continue
            parts = _split(line.rstrip("\r\n"), layout.sep) if layout.sep == r"\s+" else line.rstrip("\r\n").split(layout.sep)
            if len(parts) > idx:
                if not values and _ISO_RE.match(parts[idx].strip()):
                    return "iso"
                try:
                    values.append(float(parts[idx]))
                except ValueError:
                    pass
            if len(values) >= 1000:
                break
    if not values:
        return "s"
    return _unit_for(float(np.median(np.abs(values))))


# ------------------------------------------------------------------------------ the row reader
# One tokeniser for every format and both readers: the layout's separator, no header (a header
# line is skipped by the caller), blank lines kept as rows so that row i is file line
# ``first_line + i``, pandas' C parser. The readers add only their own typing: the engine reads
# quoted fields, fills missing trailing fields and types whole columns; the import reads fields
# verbatim (``quoted=False``), only the columns it uses, and checks each line's field count first
# (``field_count``) so that a bad line is one row's error rather than the block's.


def tokenise(source, layout: FileLayout, *, quoted: bool = True, **options):
    """The rows of ``source`` (a path or a binary file object) as raw columns; ``options`` are the
    reader's own (column names, dtypes, missing values, chunks, skipped rows, decoding)."""
    if not quoted:
        options["quoting"] = csv.QUOTE_NONE
    return pd.read_csv(source, sep=layout.sep, header=None, skip_blank_lines=False, engine="c", **options)


def line_numbers(first_line: int, n: int) -> np.ndarray:
    """The file line numbers of ``n`` consecutive rows (blank lines are rows) from ``first_line``."""
    return np.arange(first_line, first_line + n, dtype=np.int64)


def field_count(line: bytes, layout: FileLayout) -> int:
    """Number of fields of one (unquoted) line in the layout's separator."""
    if layout.sep == r"\s+":
        return len(line.split())
    return line.count(layout.sep.encode()) + 1


def _bad(mask: np.ndarray, lines: np.ndarray, path, what: str, values=None):
    if mask.any():
        pos = int(np.flatnonzero(mask)[0])
        shown = "" if values is None else f": {values[pos]!r}"
        raise DataFormatError(f"{what}{shown}", path, int(lines[pos]))


def _ns_to_seconds(ns: np.ndarray) -> np.ndarray:
    """Integer nanoseconds -> float seconds, rounded once from the coarsest exact unit.

    ``ms / 1e3`` is the correctly rounded value of a millisecond timestamp, the same float as
    parsing its decimal text; ``ns / 1e9`` would not be (ns do not fit a float exactly).
    """
    for unit in (10**9, 10**6, 10**3):
        if not (ns % unit).any():
            return (ns // unit).astype(np.float64) / (10**9 // unit)
    return (ns // 1000).astype(np.float64) / 1e6 + (ns % 1000).astype(np.float64) / 1e9


def _parse_datetimes(values: pd.Series, lines: np.ndarray, path, fmt_hint: str | None) -> np.ndarray:
    parsed = None
    if fmt_hint is not None:
        parsed = pd.to_datetime(values, format=fmt_hint, utc=True, errors="coerce")
        if parsed.isna().any():
            parsed = None
    if parsed is None:
        parsed = pd.to_datetime(values, format="ISO8601", utc=True, errors="coerce")
        if parsed.isna().any():
            # Mixed layouts within one file: slower, but only where the fast path failed.
            parsed = pd.to_datetime(values, format="mixed", utc=True, errors="coerce")
    _bad(parsed.isna().to_numpy(), lines, path, "unparseable timestamp", values.to_numpy())
    ns = parsed.dt.tz_convert(None).to_numpy(dtype="datetime64[ns]").view(np.int64)
    return _ns_to_seconds(ns)


_PER_SECOND = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}


def _time_scale(values: np.ndarray) -> float:
    """Divisor from raw numeric times to seconds, from their magnitude (the median of the whole
    file, so a few odd rows do not decide; ``_unit_for``)."""
    if values.size == 0:
        return 1.0
    return _PER_SECOND[_unit_for(float(np.median(np.abs(values))))]


class _Chunks:
    """Accumulates validated columns chunk by chunk (keeps the peak memory at one raw chunk)."""

    def __init__(self):
        self.sessions, self.items, self.times = [], [], []
        self.session_is_int = None
        self.time_kind = None  # "number" (unit decided from the magnitude) or "datetime"


def _engine_cols(lay: FileLayout) -> dict[str, int]:
    """The engine's column positions: SessionId/ItemId/Time, or REES46's own names."""
    if lay.fmt == "rees46":
        names = {"event_time": "time", "event_type": "event_type", "product_id": "item", "user_session": "session"}
    else:
        names = {"SessionId": "session", "ItemId": "item", "Time": "time"}
    return {col: lay.columns.index(role) for col, role in names.items()}


def _read_file(path, fmt: str, event_types, chunksize: int, acc: _Chunks) -> None:
    lay = detect_layout(path, fmt)
    if event_types is not None and lay.fmt != "rees46":
        raise DataFormatError("event_types filters only REES46 logs (they have an event_type column)", path)
    cols = _engine_cols(lay)
    # Leading blank lines and the header are skipped; data rows then map 1:1 to file lines.
    skip = lay.first if lay.header else lay.first - 1
    first_line = skip + 1
    if lay.fmt == "rees46":
        typing = {"dtype": str, "na_filter": False}
    else:
        # The C parser types the numeric columns (fast); only empty fields are missing values,
        # so an item id such as "NA" stays an id.
        typing = {"dtype": {cols["ItemId"]: object}, "keep_default_na": False, "na_values": [""]}
    reader = tokenise(path, lay, skiprows=skip, chunksize=chunksize, encoding="utf-8-sig", **typing)
    offset = 0
    try:
        for chunk in reader:
            n = len(chunk)
            lines = line_numbers(first_line + offset, n)
            offset += n
            if chunk.shape[1] < lay.n_fields:
                # Missing trailing fields are filled in; a narrow chunk means every row was short.
                raise DataFormatError(f"expected {lay.n_fields} fields, saw {chunk.shape[1]}", path, int(lines[0]))
            if lay.fmt == "rees46":
                blank = (chunk == "").all(axis=1).to_numpy()
            else:
                blank = chunk.isna().all(axis=1).to_numpy()
            if blank.any():
                chunk, lines = chunk[~blank], lines[~blank]
            if lay.fmt == "rees46":
                _chunk_rees46(chunk, lines, cols, path, event_types, acc)
            else:
                _chunk_events(chunk, lines, lay, cols, path, acc)
    except pd.errors.ParserError as exc:
        # e.g. "Expected 3 fields in line 7, saw 4" (pandas counts file lines, header included).
        m = re.search(r"line (\d+)", str(exc))
        raise DataFormatError(f"malformed row ({exc})", path, int(m.group(1)) if m else None) from exc
    except UnicodeDecodeError as exc:
        raise DataFormatError(f"not UTF-8 text ({exc})", path) from exc


def _is_int_dtype(values: pd.Series) -> bool:
    return values.dtype.kind in "iu"


def _session_column(values: pd.Series, lines, path, acc: _Chunks, must_be_int: bool) -> np.ndarray:
    _bad(values.isna().to_numpy(), lines, path, "missing SessionId")
    if _is_int_dtype(values):
        is_int = np.ones(len(values), dtype=bool)
    else:
        num = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
        is_int = np.isfinite(num) & (num == np.floor(num))
    if acc.session_is_int is None:
        acc.session_is_int = bool(is_int.all()) or must_be_int
    if acc.session_is_int:
        _bad(~is_int, lines, path, "SessionId is not an integer", values.to_numpy())
        if _is_int_dtype(values):
            return values.to_numpy(dtype=np.int64)
        return pd.to_numeric(values).to_numpy().astype(np.int64)
    return values.astype(str).to_numpy(dtype=object)


def _item_column(values: pd.Series, lines, path) -> np.ndarray:
    raw = values.to_numpy(dtype=object)
    _bad(pd.isna(raw) | (raw == ""), lines, path, "missing ItemId")
    # Factorising makes equal ids share one str object: 10M rows then cost 8 bytes each.
    codes, uniques = pd.factorize(raw)
    return np.asarray(uniques, dtype=object)[codes]


def _time_column(values: pd.Series, lines, path, acc: _Chunks, lay: FileLayout) -> np.ndarray:
    _bad(values.isna().to_numpy(), lines, path, "missing Time")
    if values.dtype.kind in "iuf":
        if acc.time_kind is None:
            acc.time_kind = "number"
        if acc.time_kind == "datetime":
            _bad(np.ones(len(values), bool), lines, path, "Time is a number, earlier rows had dates", values.to_numpy())
        # Integers stay exact until the unit is known (ms -> s is then rounded once).
        return values.to_numpy(dtype=np.int64 if _is_int_dtype(values) else np.float64)
    text = values.astype(str)
    if acc.time_kind is None:
        acc.time_kind = "datetime" if lay.fmt == "yoochoose" or _ISO_RE.match(text.iloc[0].strip()) else "number"
    if acc.time_kind == "datetime":
        return _parse_datetimes(text.str.strip(), lines, path, None)
    num = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64)
    _bad(~np.isfinite(num), lines, path, "Time is not a number", text.to_numpy())
    return num


def _chunk_events(chunk: pd.DataFrame, lines, lay: FileLayout, cols: dict, path, acc: _Chunks) -> None:
    if chunk.shape[1] > lay.n_fields:
        extra = chunk.iloc[:, lay.n_fields :].notna().any(axis=1).to_numpy()
        _bad(extra, lines, path, f"more than {lay.n_fields} fields")
    sess = _session_column(chunk.iloc[:, cols["SessionId"]], lines, path, acc, lay.fmt == "yoochoose")
    items = _item_column(chunk.iloc[:, cols["ItemId"]], lines, path)
    times = _time_column(chunk.iloc[:, cols["Time"]], lines, path, acc, lay)
    acc.sessions.append(sess)
    acc.items.append(items)
    acc.times.append(times)


def _chunk_rees46(chunk: pd.DataFrame, lines, cols: dict, path, event_types, acc: _Chunks) -> None:
    if event_types is not None:
        keep = chunk.iloc[:, cols["event_type"]].isin(list(event_types)).to_numpy()
        chunk, lines = chunk[keep], lines[keep]
    # REES46 has rows without a user_session (anonymous traffic): they belong to no session.
    sess = chunk.iloc[:, cols["user_session"]]
    keep = (sess != "").to_numpy()
    chunk, lines, sess = chunk[keep], lines[keep], sess[keep]
    acc.session_is_int = False
    acc.time_kind = "datetime"
    items = _item_column(chunk.iloc[:, cols["product_id"]], lines, path)
    times = _parse_datetimes(chunk.iloc[:, cols["event_time"]], lines, path, REES46_TIME_FORMAT)
    acc.sessions.append(sess.to_numpy(dtype=object))
    acc.items.append(items)
    acc.times.append(times)


def read_events(
    path: str | os.PathLike | Sequence[str | os.PathLike],
    fmt: str = "auto",
    event_types: Iterable[str] | None = None,
    chunksize: int = 1_000_000,
) -> pd.DataFrame:
    """Read a click log into a DataFrame ``SessionId, ItemId, Time`` sorted by session, then time.

    ``fmt``: ``auto`` (detect), ``yoochoose`` (``SessionID,Timestamp,ItemID,Category``, ISO-8601,
    no header), ``tsv`` (a ``SessionId ItemId Time`` header, any separator; Time in unix seconds,
    ms, us or ns, detected from its magnitude, or ISO-8601) or ``rees46`` (``event_time, event_type,
    product_id, ..., user_session``; ``event_types`` keeps only those, e.g. ``["view"]``).
    Several paths are read as one log (their session ids must not collide).
    SessionId is int64 when every id is an integer, else str; ItemId is str; Time is float64 unix
    seconds. Malformed input raises ``DataFormatError`` naming the file and line.
    """
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}, got {fmt!r}")
    paths = [path] if isinstance(path, (str, os.PathLike)) else list(path)
    if not paths:
        raise ValueError("no input path")
    if event_types is not None:
        event_types = [event_types] if isinstance(event_types, str) else list(event_types)
    accs = []
    for p in paths:
        if not os.path.isfile(p):
            raise FileNotFoundError(p)
        acc = _Chunks()
        _read_file(p, fmt, event_types, chunksize, acc)
        accs.append(acc)
    return _assemble(accs)


def _assemble(accs: list[_Chunks]) -> pd.DataFrame:
    parts_s, parts_i, parts_t = [], [], []
    all_int = all(a.session_is_int is not False for a in accs)
    for acc in accs:
        if not acc.times:
            continue
        times = np.concatenate(acc.times)
        if acc.time_kind == "number":
            scale = _time_scale(times)
            times = times.astype(np.float64)
            if scale != 1.0:
                times = times / scale
        sess = np.concatenate(acc.sessions)
        if not all_int:
            sess = sess.astype(str).astype(object)
        parts_s.append(sess)
        parts_i.append(np.concatenate(acc.items))
        parts_t.append(times)
    if not parts_t:
        return pd.DataFrame(
            {"SessionId": pd.Series([], dtype=np.int64), "ItemId": pd.Series([], dtype=str), "Time": pd.Series([], dtype=np.float64)}
        )
    sess = np.concatenate(parts_s)
    items = np.concatenate(parts_i)
    times = np.concatenate(parts_t)
    order = session_time_order(sess, times)
    return pd.DataFrame(
        {
            "SessionId": pd.Series(sess[order], dtype=np.int64 if all_int else str),
            "ItemId": pd.Series(items[order], dtype=str),
            "Time": times[order],
        }
    )




def write_tsv(df: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write ``SessionId<TAB>ItemId<TAB>Time`` with a header; Time as integer seconds when every
    value is integral, else in the shortest text that reads back as the same float."""
    validate_columns(df)
    out = df[list(COLUMNS)]
    t = out["Time"].to_numpy(dtype=np.float64)
    if len(t) and np.all(np.isfinite(t)) and np.all(t == np.floor(t)):
        out = out.assign(Time=t.astype(np.int64))
    out.to_csv(path, sep="\t", index=False, lineterminator="\n")


# ========================================================================= the import reader
# The shop's import (tracking.importers) reads the same formats block by block, in a read-ahead
# thread, and keeps going past bad lines: every bad row is reported with its line number and
# skipped, the rest is written. Its layouts: "yoochoose" (clicks), "gru4rec" (the SessionId/ItemId/
# Time TSV: RetailRocket's processed views, the shop's own export) and "rees46". The event types a
# row becomes are named here (EVENT_NAMES); the importer maps them to its own codes.

EVENT_NAMES = ("view", "add_to_cart", "remove_from_cart", "purchase")
_NAME_CODE = {name: i for i, name in enumerate(EVENT_NAMES)}
REES46_TYPES = {"view": "view", "cart": "add_to_cart", "remove_from_cart": "remove_from_cart", "purchase": "purchase"}
# YOOCHOOSE "clicks" and the RetailRocket TSVs are item-page views: they are stored as views.
DEFAULT_TYPE = {"yoochoose": "view", "gru4rec": "view"}

MIN_TIME_US = int(datetime(1990, 1, 1, tzinfo=dt_timezone.utc).timestamp()) * 1_000_000
_NAT = np.iinfo(np.int64).min
_ID_RE = r"[^\s]{1,64}"
_INT_RE = r"[0-9]{1,18}"
# Small enough that the next block is parsed while this one is written from the start of a file
# (the 193k-row YOOCHOOSE week is three blocks), large enough that the per-block statements do
# not count.
BLOCK_BYTES = 4 * 1024 * 1024


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
    type_code: np.ndarray  # int16 index into EVENT_NAMES
    # (index into the names of each row, the names): a category column read as categorical, so the
    # per-row work stays in pandas' C parser; "" when unknown
    category: tuple[np.ndarray, np.ndarray] | None = None

    def __len__(self):
        return len(self.time_us)


def iter_blocks(
    path: str, block_bytes: int = BLOCK_BYTES, first_bytes: int | None = None
) -> Iterator[tuple[bytes, int, int]]:
    """Yield (block of whole lines, 1-based number of its first line, bytes consumed so far).
    The first block reads ``first_bytes`` (default: a sixteenth of a block) and each next one up
    to four times more, so that writing starts soon (nothing is written while the first block is
    parsed) and the next block is always parsed before the current one is written."""
    line_no = 1
    consumed = 0
    rest = b""
    size = first_bytes or max(block_bytes // 16, 1)
    with open(path, "rb") as f:
        while True:
            data = f.read(size)
            size = min(size * 4, block_bytes)
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


# The columns the importer reads (others, e.g. REES46's brand and price, are not even converted).
_USED_COLUMNS = ("session", "item", "time", "category", "event_type")
# Columns with few distinct values, read as categoricals: their checks run once per distinct value.
_CATEGORICAL_COLUMNS = ("category", "event_type")


def _read(block: bytes, layout: FileLayout, dtype) -> pd.DataFrame:
    dtype = {c: "category" if c in _CATEGORICAL_COLUMNS else t for c, t in dtype.items()}
    return tokenise(
        io.BytesIO(block),
        layout,
        quoted=False,
        names=layout.columns,
        usecols=[c for c in layout.columns if c in _USED_COLUMNS],
        dtype=dtype,
        keep_default_na=False,
        na_filter=False,
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
        if layout.sep == r"\s+" or block.count(layout.sep.encode()) != n_lines * (len(layout.columns) - 1):
            raise ValueError("field count mismatch")
        df = _read(block, layout, fast_dtype)
        if len(df) != n_lines:
            raise ValueError("line count mismatch")
        lines = line_numbers(first_line, n_lines)
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
    want = len(layout.columns)
    good: list[bytes] = []
    good_lines: list[int] = []
    errors: list[RowError] = []
    for i, raw in enumerate(block.split(b"\n")[:-1]):
        line = raw.rstrip(b"\r")
        if not line.strip():
            continue  # blank lines are not rows
        n = field_count(line, layout)
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


def _categories(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(index into the names of each row, the stripped names) of a column."""
    if not isinstance(column.dtype, pd.CategoricalDtype):
        column = column.astype(str).astype("category")
    names = column.cat.categories.astype(str).str.strip().to_numpy(dtype=object)
    return column.cat.codes.to_numpy(dtype=np.int64), names


def _time_us(df: pd.DataFrame, layout: FileLayout) -> np.ndarray:
    col = df["time"]
    if layout.fmt == "gru4rec" and layout.time_unit != "iso":
        values = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64)
        scale = 1e6 / _PER_SECOND[layout.time_unit]
        with np.errstate(invalid="ignore", over="ignore"):
            us = np.rint(values * scale)
        ok = np.isfinite(us) & (np.abs(us) < 9e18)
        out = np.full(len(us), _NAT, dtype=np.int64)
        out[ok] = us[ok].astype(np.int64)
        return out
    if layout.fmt != "rees46":
        parsed = pd.to_datetime(col, format="ISO8601", errors="coerce", utc=True)
    else:
        parsed = pd.to_datetime(col, format=REES46_TIME_FORMAT, errors="coerce", utc=True)
    return parsed.dt.tz_convert(None).dt.as_unit("us").to_numpy(dtype="datetime64[us]").view(np.int64)


# A YOOCHOOSE time whose UTC offset is 16 hours or more either way. pandas would convert it, but the
# events API refuses such offsets (PostgreSQL cannot take them, and no time zone has them), so a log
# line with one is as bad a row here as there.
_FAR_OFFSET = re.compile(r"[T ]\d\d:\d\d(?::\d\d(?:[.,]\d+)?)?\s*[+-](?:1[6-9]|[2-9]\d)(?::?\d\d)?\s*$")


def _offset_out_of_range(col: pd.Series) -> np.ndarray:
    """Rows of an ISO 8601 time column with a UTC offset beyond +-15:59. Nearly every block of a
    real log has no offset at all (no '+', and a row's only '-' are its date's two): that is
    checked on the joined column in C (about 1% of the import's time), the row-wise regex runs only
    on blocks that may have offsets."""
    values = col.to_numpy(dtype=object)
    text = "".join(values)
    if "+" not in text and text.count("-") == 2 * len(values):
        return np.zeros(len(values), dtype=bool)
    return col.str.contains(_FAR_OFFSET, regex=True).to_numpy(dtype=bool)


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
    if layout.fmt == "yoochoose":
        flag(_offset_out_of_range(df["time"]), "bad timestamp (UTC offset beyond +-15:59)")
    flag((time_us < MIN_TIME_US) | (time_us > max_us), "timestamp out of range (1990 .. now + 1 day)")
    if layout.fmt == "rees46":
        codes, names = _categories(df["event_type"])
        lookup = np.array([_NAME_CODE.get(REES46_TYPES.get(name, ""), -1) for name in names], dtype=np.int16)
        type_code = lookup[codes] if len(lookup) else np.zeros(n, dtype=np.int16)
        flag(type_code < 0, "unknown event_type")
    else:
        type_code = np.full(n, _NAME_CODE[DEFAULT_TYPE[layout.fmt]], dtype=np.int16)
    category = None
    if "category" in df.columns:
        codes, names = _categories(df["category"])
        if len(names):
            flag(np.array([len(name) > 200 for name in names])[codes], "category too long")
        category = (codes, names)

    errors = []
    for mask, message in messages:
        errors.extend(RowError(int(line), message) for line in lines[mask])
    keep = ~bad
    chunk = Chunk(
        session=session[keep],
        item=item[keep],
        time_us=time_us[keep],
        type_code=type_code[keep],
        category=(category[0][keep], category[1]) if category is not None else None,
    )
    return chunk, errors


def read_blocks(path: str, layout: FileLayout, block_bytes: int = BLOCK_BYTES):
    """Yield (block of whole lines, chunk of valid rows, errors, data rows in the block, bytes
    consumed so far) for a whole file."""
    # the header is line ``layout.first`` (blank lines may come before it): skip up to it
    skip_lines = layout.first if layout.header else 0
    for block, first_line, consumed in iter_blocks(path, block_bytes):
        while skip_lines and block:
            cut = block.find(b"\n")
            block = block[cut + 1 :] if cut >= 0 else b""
            first_line, skip_lines = first_line + 1, skip_lines - 1
        if not block:
            continue
        chunk, errors, rows = parse_block(block, first_line, layout)
        yield block, chunk, errors, rows, consumed
