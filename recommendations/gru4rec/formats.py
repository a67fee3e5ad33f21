"""The one reader per click-log format, into ``(SessionId, ItemId, Time)`` events, and the TSV writer.

Formats: YOOCHOOSE raw clicks, GRU4Rec TSV (RetailRocket's processed views, the shop's own export;
seconds, ms, us or ns, detected) and the REES46 event log. The engine CLI, the benchmarks and
training read files here; tracking's importer shares the layout detection and the value parsing
(``detect_layout``, ``parse_datetimes``, ``TIME_UNIT_SCALE``) for its streaming, line-numbered import.
"""
from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Iterable, Sequence

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


# --------------------------------------------------------------------------------------- reading
class _Layout:
    """What sniffing the first line found: format, separator, header, column positions."""

    def __init__(self, fmt, sep, header, n_fields, cols, first=1):
        self.fmt, self.sep, self.header, self.n_fields, self.cols = fmt, sep, header, n_fields, cols
        self.first = first  # number of the first non-blank line (the header, if any)


def _first_line(path) -> tuple[str, int]:
    """The first non-blank line and its 1-based number."""
    with open(path, encoding="utf-8-sig", newline="") as fh:
        for number, line in enumerate(fh, start=1):
            if line.strip():
                return line.rstrip("\r\n"), number
    raise DataFormatError("file is empty", path)


def _sniff_sep(line: str, path) -> str:
    # Tab first: GRU4Rec files are TSV, and a tab never occurs inside an id or a timestamp,
    # while a comma may (a REES46 category path does not, but free text could).
    for sep in ("\t", ",", ";", "|"):
        if len(line.split(sep)) >= 3:
            return sep
    if len(line.split()) >= 3:
        return r"\s+"
    raise DataFormatError(f"cannot detect the separator: fewer than 3 fields in {line[:80]!r}", path)


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


def _layout(path, fmt: str) -> _Layout:
    line, first = _first_line(path)
    lay = _detect(path, fmt, line, first)
    lay.first = first
    return lay


def _detect(path, fmt: str, line: str, first: int) -> _Layout:
    sep = _sniff_sep(line, path)
    fields = _split(line, sep)
    lower = [f.strip().lower() for f in fields]
    if fmt in ("auto", "rees46") and all(c in lower for c in _REES46_COLUMNS):
        return _Layout("rees46", sep, True, len(fields), {c: lower.index(c) for c in _REES46_COLUMNS})
    if fmt == "rees46":
        raise DataFormatError(f"not a REES46 log: the header lacks one of {_REES46_COLUMNS}", path, first)
    cols = _header_cols(fields)
    if cols is not None:
        if fmt == "yoochoose":
            raise DataFormatError("YOOCHOOSE clicks have no header line", path, first)
        return _Layout("tsv", sep, True, len(fields), cols)
    looks_yoochoose = len(fields) == 4 and bool(_ISO_RE.match(fields[1].strip()))
    if fmt == "yoochoose" or (fmt == "auto" and looks_yoochoose):
        return _Layout("yoochoose", sep, False, len(fields), {"SessionId": 0, "Time": 1, "ItemId": 2})
    if len(fields) == 3:
        # A headerless 3-column file: the GRU4Rec column order.
        return _Layout("tsv", sep, False, 3, {"SessionId": 0, "ItemId": 1, "Time": 2})
    raise DataFormatError(
        "unrecognised format: expected a SessionId/ItemId/Time header, a REES46 header or "
        f"YOOCHOOSE clicks; first line: {line[:80]!r}",
        path,
        first,
    )


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


def _time_scale(values: np.ndarray) -> float:
    """Divisor from raw numeric times to seconds, from their magnitude (median, so a few odd rows
    do not decide): 1.4e9 is seconds, 1.4e12 ms, 1.4e15 microseconds, 1.4e18 ns."""
    if values.size == 0:
        return 1.0
    m = float(np.median(np.abs(values)))
    if m >= 1e17:
        return 1e9
    if m >= 1e14:
        return 1e6
    if m >= 1e11:
        return 1e3
    return 1.0


class _Chunks:
    """Accumulates validated columns chunk by chunk (keeps the peak memory at one raw chunk)."""

    def __init__(self):
        self.sessions, self.items, self.times = [], [], []
        self.session_is_int = None
        self.time_kind = None  # "number" (unit decided from the magnitude) or "datetime"


def _read_file(path, fmt: str, event_types, chunksize: int, acc: _Chunks) -> None:
    lay = _layout(path, fmt)
    if event_types is not None and lay.fmt != "rees46":
        raise DataFormatError("event_types filters only REES46 logs (they have an event_type column)", path)
    # Leading blank lines and the header are skipped; data rows then map 1:1 to file lines.
    skip = lay.first if lay.header else lay.first - 1
    first_line = skip + 1
    if lay.fmt == "rees46":
        typing = {"dtype": str, "na_filter": False}
    else:
        # The C parser types the numeric columns (fast); only empty fields are missing values,
        # so an item id such as "NA" stays an id.
        typing = {"dtype": {lay.cols["ItemId"]: object}, "keep_default_na": False, "na_values": [""]}
    reader = pd.read_csv(
        path,
        sep=lay.sep,
        header=None,
        skiprows=skip,
        skip_blank_lines=False,
        chunksize=chunksize,
        engine="c",  # the C parser also handles the whitespace separator r"\s+"
        encoding="utf-8-sig",
        **typing,
    )
    offset = 0
    try:
        for chunk in reader:
            n = len(chunk)
            lines = np.arange(first_line + offset, first_line + offset + n)
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
                _chunk_rees46(chunk, lines, lay, path, event_types, acc)
            else:
                _chunk_events(chunk, lines, lay, path, acc)
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


def _time_column(values: pd.Series, lines, path, acc: _Chunks, lay: _Layout) -> np.ndarray:
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


def _chunk_events(chunk: pd.DataFrame, lines, lay: _Layout, path, acc: _Chunks) -> None:
    if chunk.shape[1] > lay.n_fields:
        extra = chunk.iloc[:, lay.n_fields :].notna().any(axis=1).to_numpy()
        _bad(extra, lines, path, f"more than {lay.n_fields} fields")
    sess = _session_column(chunk.iloc[:, lay.cols["SessionId"]], lines, path, acc, lay.fmt == "yoochoose")
    items = _item_column(chunk.iloc[:, lay.cols["ItemId"]], lines, path)
    times = _time_column(chunk.iloc[:, lay.cols["Time"]], lines, path, acc, lay)
    acc.sessions.append(sess)
    acc.items.append(items)
    acc.times.append(times)


def _chunk_rees46(chunk: pd.DataFrame, lines, lay: _Layout, path, event_types, acc: _Chunks) -> None:
    if event_types is not None:
        keep = chunk.iloc[:, lay.cols["event_type"]].isin(list(event_types)).to_numpy()
        chunk, lines = chunk[keep], lines[keep]
    # REES46 has rows without a user_session (anonymous traffic): they belong to no session.
    sess = chunk.iloc[:, lay.cols["user_session"]]
    keep = (sess != "").to_numpy()
    chunk, lines, sess = chunk[keep], lines[keep], sess[keep]
    acc.session_is_int = False
    acc.time_kind = "datetime"
    items = _item_column(chunk.iloc[:, lay.cols["product_id"]], lines, path)
    times = _parse_datetimes(chunk.iloc[:, lay.cols["event_time"]], lines, path, "%Y-%m-%d %H:%M:%S UTC")
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


def session_time_order(sess: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Stable order by session id, then time (ties keep the file order)."""
    codes, _ = pd.factorize(sess, sort=True)
    return np.lexsort((times, codes))



def write_tsv(df: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write ``SessionId<TAB>ItemId<TAB>Time`` with a header; Time as integer seconds when every
    value is integral, else in the shortest text that reads back as the same float."""
    validate_columns(df)
    out = df[list(COLUMNS)]
    t = out["Time"].to_numpy(dtype=np.float64)
    if len(t) and np.all(np.isfinite(t)) and np.all(t == np.floor(t)):
        out = out.assign(Time=t.astype(np.int64))
    out.to_csv(path, sep="\t", index=False, lineterminator="\n")
