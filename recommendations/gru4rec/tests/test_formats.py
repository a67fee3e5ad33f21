"""Reading click logs, one reader per format, and writing the TSV (recommendations.gru4rec.formats)."""

import numpy as np
import pandas as pd
import pytest

from recommendations.gru4rec.formats import DataFormatError, read_events, write_tsv

from .logs import SHARED
from .logs import events as _events
from .logs import triples as _triples
from .logs import write_log as _write


# ------------------------------------------------------------------------------ format detection
def test_tsv_seconds_with_header_sorted_by_session_then_time(tmp_path):
    p = _write(tmp_path, "SessionId\tItemId\tTime\n2\t10\t1400000005\n1\t11\t1400000002\n1\t10\t1400000001\n2\t12\t1400000003\n")
    df = read_events(p)
    assert list(df.columns) == ["SessionId", "ItemId", "Time"]
    assert df.SessionId.dtype == np.int64 and df.Time.dtype == np.float64
    assert _triples(df) == [
        (1, "10", 1400000001.0),
        (1, "11", 1400000002.0),
        (2, "12", 1400000003.0),
        (2, "10", 1400000005.0),
    ]


def test_tsv_milliseconds_are_detected(tmp_path):
    p = _write(tmp_path, "SessionId\tItemId\tTime\n7\t5\t1441495318252\n7\t6\t1441495416363\n")
    df = read_events(p)
    assert df.Time.tolist() == [1441495318.252, 1441495416.363]


def test_fractional_seconds_read_exactly(tmp_path):
    p = _write(tmp_path, "SessionId\tItemId\tTime\n3\t214716935\t1396444666.940\n3\t214774687\t1396445162.515\n")
    assert read_events(p).Time.tolist() == [1396444666.94, 1396445162.515]


def test_comma_separated_header_any_order_and_string_sessions(tmp_path):
    p = _write(tmp_path, "time,item_id,session_id\n1400000002,b,s-2\n1400000001,a,s-1\n")
    df = read_events(p)
    assert _triples(df) == [("s-1", "a", 1400000001.0), ("s-2", "b", 1400000002.0)]


def test_headerless_three_columns(tmp_path):
    p = _write(tmp_path, "1 5 1400000000\n1 6 1400000010\n")
    assert _triples(read_events(p)) == [(1, "5", 1400000000.0), (1, "6", 1400000010.0)]


def test_yoochoose_raw_clicks(tmp_path):
    p = _write(
        tmp_path,
        "1,2014-04-07T10:54:09.868Z,214536500,0\n1,2014-04-07T10:51:09.277Z,214536502,0\n2,2014-04-01T03:00:00Z,5,0\n",
    )
    df = read_events(p)
    assert df.SessionId.tolist() == [1, 1, 2]
    assert df.ItemId.tolist() == ["214536502", "214536500", "5"]
    assert df.Time.tolist() == [1396867869.277, 1396868049.868, 1396321200.0]


def test_rees46_with_event_type_filter_and_anonymous_rows(tmp_path):
    head = "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session\n"
    rows = [
        "2019-10-01 00:00:10 UTC,view,44600062,21,,shiseido,35.79,5413,aaa",
        "2019-10-01 00:00:00 UTC,view,3900821,20,appliances.water,aqua,33.20,5547,aaa",
        "2019-10-01 00:00:20 UTC,cart,3900821,20,appliances.water,aqua,33.20,5547,aaa",
        "2019-10-01 00:00:30 UTC,view,17302664,22,,creed,28.31,5550,",
    ]
    p = _write(tmp_path, head + "\n".join(rows) + "\n", "log.csv")
    df = read_events(p)
    assert _triples(df) == [("aaa", "3900821", 1569888000.0), ("aaa", "44600062", 1569888010.0), ("aaa", "3900821", 1569888020.0)]
    assert read_events(p, event_types=["cart"]).ItemId.tolist() == ["3900821"]


def test_several_files_are_one_log(tmp_path):
    a = _write(tmp_path, "SessionId\tItemId\tTime\n2\t1\t1441495318252\n2\t2\t1441495318253\n", "a.tsv")
    b = _write(tmp_path, "SessionId\tItemId\tTime\n1\t3\t1442004589439\n1\t4\t1442004589440\n", "b.tsv")
    df = read_events([a, b])
    assert df.SessionId.tolist() == [1, 1, 2, 2]
    assert df.Time.iloc[0] == 1442004589.439


def test_blank_lines_are_skipped_and_lines_still_counted(tmp_path):
    p = _write(tmp_path, "\nSessionId\tItemId\tTime\n1\t5\t100\n\n1\t6\t200\n")
    assert len(read_events(p)) == 2
    p = _write(tmp_path, "\n\nSessionId\tItemId\tTime\n1\t5\t100\n\n1\t6\tx\n", "bad.tsv")
    with pytest.raises(DataFormatError, match="line 6"):
        read_events(p)


def test_chunked_reading_gives_the_same_events(tmp_path):
    rng = np.random.default_rng(0)
    n = 1000
    lines = [f"{s}\t{i}\t{1400000000 + t}" for s, i, t in zip(rng.integers(0, 50, n), rng.integers(0, 30, n), rng.permutation(n))]
    p = _write(tmp_path, "SessionId\tItemId\tTime\n" + "\n".join(lines) + "\n")
    pd.testing.assert_frame_equal(read_events(p, chunksize=64), read_events(p))


# ------------------------------------------------------------------------------ malformed input
@pytest.mark.parametrize(
    "text, line, fragment",
    [
        ("SessionId\tItemId\tTime\n1\t5\t100\n1\t6\tabc\n", 3, "Time is not a number"),
        ("SessionId\tItemId\tTime\n1\t5\t100\n1\t\t200\n", 3, "missing ItemId"),
        ("SessionId\tItemId\tTime\n1\t5\t100\n1\t6\n", 3, "missing Time"),
        ("SessionId\tItemId\tTime\n1\t5\t100\n1\t6\t200\n1\t7\t300\t9\n", 4, ""),
        ("1,2014-04-07T10:54:09.868Z,214536500,0\nx,2014-04-07T10:55:09.868Z,214536501,0\n", 2, "not an integer"),
        ("1,2014-04-07T10:54:09.868Z,214536500,0\n1,yesterday,214536501,0\n", 2, "unparseable timestamp"),
    ],
)
def test_malformed_rows_name_the_line(tmp_path, text, line, fragment):
    p = _write(tmp_path, text)
    with pytest.raises(DataFormatError) as err:
        read_events(p)
    assert err.value.line == line
    assert f"line {line}" in str(err.value)
    assert fragment in str(err.value)


def test_malformed_row_in_a_later_chunk(tmp_path):
    rows = [f"1\t{i}\t{100 + i}" for i in range(10)]
    rows[7] = "1\t7\tnot-a-time"
    p = _write(tmp_path, "SessionId\tItemId\tTime\n" + "\n".join(rows) + "\n")
    with pytest.raises(DataFormatError) as err:
        read_events(p, chunksize=3)
    assert err.value.line == 9


def test_unrecognised_and_empty_files(tmp_path):
    with pytest.raises(DataFormatError):
        read_events(_write(tmp_path, "a,b,c,d,e\n1,2,3,4,5\n"))
    with pytest.raises(DataFormatError):
        read_events(_write(tmp_path, "\n\n", "empty.txt"))
    with pytest.raises(DataFormatError):
        read_events(_write(tmp_path, "SessionId\tItemId\tTime\n1\t2\t3\n", "x.tsv"), event_types=["view"])


def test_write_tsv_round_trip(tmp_path):
    ints = _events([(1, "A", 1400000000), (1, "B", 1400000001)])
    write_tsv(ints, tmp_path / "i.tsv")
    assert (tmp_path / "i.tsv").read_text() == "SessionId\tItemId\tTime\n1\tA\t1400000000\n1\tB\t1400000001\n"
    frac = _events([(2, "7", 1396444666.94), (2, "8", 1396445162.515)])
    write_tsv(frac, tmp_path / "f.tsv")
    assert _triples(read_events(tmp_path / "f.tsv")) == _triples(frac)


# ------------------------------------------------------------------ the shared benchmark splits
def _need(*parts):
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data set not available: {path} (only inside the project workspace)")
    return path



def test_reads_the_rees46_head():
    path = _need("rees46-head", "2019-Oct-head.csv")
    df = read_events(path)
    assert len(df) == 17434  # 17,435 rows, one without a user_session
    assert df.Time.min() == 1569888000.0
    assert len(read_events(path, event_types=["view"])) < len(df)


# ------------------------------------------------------------------ the import reader (blocks)
from recommendations.gru4rec.formats import EVENT_NAMES, detect_layout, parse_block  # noqa: E402


def test_import_block_yoochoose_valid_rows_and_bad_lines_by_number(tmp_path):
    p = _write(tmp_path, "1,2014-04-07T10:51:09.277Z,214536502,0\n1,2014-04-07T10:54:09.868Z,214536500,0\n"
                         "x,2014-04-07T10:54:09.868Z,1,0\n1,2,3\n", "clicks.dat")
    layout = detect_layout(str(p))
    assert (layout.fmt, layout.sep, layout.header) == ("yoochoose", ",", False)
    chunk, errors, rows = parse_block(p.read_bytes(), 1, layout)
    assert chunk.session.tolist() == [1, 1]
    assert chunk.item.tolist() == [214536502, 214536500]
    assert chunk.time_us.tolist() == [1396867869277000, 1396868049868000]
    assert [EVENT_NAMES[c] for c in chunk.type_code] == ["view", "view"]
    assert [str(e) for e in errors] == ["line 3: bad session id (expected an integer)", "line 4: expected 4 fields, got 3"]
    assert rows == 4


def test_import_block_rees46_event_types(tmp_path):
    header = "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session\n"
    body = ("2019-10-01 00:00:00 UTC,view,44600062,21,,shiseido,35.79,541312140,72d76fde\n"
            "2019-10-01 00:00:01 UTC,cart,3900821,20,appliances.water_heater,aqua,33.20,554748717,9333dfbd\n"
            "2019-10-01 00:00:02 UTC,wishlist,3900821,20,,aqua,33.20,554748717,9333dfbd\n")
    p = _write(tmp_path, header + body, "rees.csv")
    layout = detect_layout(str(p))
    assert (layout.fmt, layout.header) == ("rees46", True)
    chunk, errors, rows = parse_block(body.encode(), 2, layout)
    assert chunk.session.tolist() == ["72d76fde", "9333dfbd"]
    assert chunk.time_us.tolist() == [1569888000000000, 1569888001000000]
    assert [EVENT_NAMES[c] for c in chunk.type_code] == ["view", "add_to_cart"]
    assert [str(e) for e in errors] == ["line 4: unknown event_type"] and rows == 3


# ------------------------------------------------------- one layout detection for both readers
def test_one_detection_semicolons_header_aliases_and_microseconds(tmp_path):
    p = _write(tmp_path, "time;item_id;session_id\n1400000002000000;b;7\n1400000001500000;a;7\n", "us.csv")
    layout = detect_layout(str(p))
    assert (layout.fmt, layout.sep, layout.header, layout.columns, layout.time_unit) == (
        "gru4rec", ";", True, ["time", "item", "session"], "us")
    assert _triples(read_events(p)) == [(7, "a", 1400000001.5), (7, "b", 1400000002.0)]
    body = p.read_bytes().split(b"\n", 1)[1]
    chunk, errors, rows = parse_block(body, 2, layout)
    # string item ids: the block is read as text (the import's ids are then strings)
    assert chunk.session.tolist() == ["7", "7"] and chunk.item.tolist() == ["b", "a"]
    assert rows == 2 and errors == []
    assert chunk.time_us.tolist() == [1400000002000000, 1400000001500000]


def test_one_detection_whitespace_separated_headerless(tmp_path):
    p = _write(tmp_path, "1 5 1400000000\n1  6 1400000010\n2 7\n", "ws.txt")
    layout = detect_layout(str(p))
    assert (layout.fmt, layout.sep, layout.header, layout.time_unit) == ("gru4rec", r"\s+", False, "s")
    chunk, errors, rows = parse_block(p.read_bytes(), 1, layout)
    assert chunk.item.tolist() == ["5", "6"]  # counted line by line, read as text
    assert chunk.time_us.tolist() == [1400000000000000, 1400000010000000]
    assert [str(e) for e in errors] == ["line 3: expected 3 fields, got 2"] and rows == 3


def test_one_detection_iso_times_in_a_tsv(tmp_path):
    p = _write(tmp_path, "SessionId\tItemId\tTime\n3\t9\t2014-04-07T10:51:09.277Z\n", "iso.tsv")
    layout = detect_layout(str(p), "tsv")
    assert (layout.fmt, layout.time_unit) == ("gru4rec", "iso")
    chunk, errors, _ = parse_block(b"3\t9\t2014-04-07T10:51:09.277Z\n", 2, layout)
    assert chunk.time_us.tolist() == [1396867869277000] and errors == []
    assert read_events(p).Time.tolist() == [1396867869.277]


def test_one_detection_yoochoose_header_only_when_forced_and_not_a_click(tmp_path):
    p = _write(tmp_path, "SessionID,Timestamp,ItemID,Category\n4,2014-04-07T10:51:09.277Z,214536502,0\n", "h.dat")
    assert detect_layout(str(p), "yoochoose").header is True
    assert _triples(read_events(p, fmt="yoochoose")) == [(4, "214536502", 1396867869.277)]
    bad_first = _write(tmp_path, "x,2014-04-07T10:51:09.277Z,214536502,0\n", "b.dat")
    assert detect_layout(str(bad_first), "yoochoose").header is False
    with pytest.raises(DataFormatError, match="line 1: SessionId is not an integer"):
        read_events(bad_first, fmt="yoochoose")


def test_one_detection_errors_name_file_and_line(tmp_path):
    p = _write(tmp_path, "\n\na,b,c,d,e\n", "odd.csv")
    with pytest.raises(DataFormatError) as err:
        detect_layout(str(p))
    assert err.value.line == 3 and "unrecognised format" in str(err.value)
    with pytest.raises(DataFormatError, match="not a REES46 log"):
        detect_layout(str(_write(tmp_path, "event_time,user_session,x\n", "r.csv")))
    with pytest.raises(DataFormatError, match="line 1: not a REES46 log"):
        read_events(_write(tmp_path, "SessionId\tItemId\tTime\n1\t2\t3\n", "g.tsv"), fmt="rees46")
    # a headerless REES46 log (its nine columns in their order) when the format is given
    rees = _write(tmp_path, "2019-10-01 00:00:00 UTC,view,44600062,21,,shiseido,35.79,541312140,72d76fde\n", "n.csv")
    assert detect_layout(str(rees), "rees46").header is False
    assert _triples(read_events(rees, fmt="rees46")) == [("72d76fde", "44600062", 1569888000.0)]
    with pytest.raises(DataFormatError, match="line 1: more than 4 fields"):
        read_events(rees, fmt="yoochoose")  # nine fields: not a YOOCHOOSE header, a bad click


# ---------------------------------------------------------------- one row tokeniser, two readers
from recommendations.gru4rec.formats import field_count, line_numbers, read_blocks, tokenise  # noqa: E402


def test_tokenise_reads_quotes_for_the_engine_and_verbatim_for_the_import(tmp_path):
    p = _write(tmp_path, '1,"a b",1400000000\n\n2,c,1400000001\n', "q.csv")
    layout = detect_layout(str(p))
    assert (layout.fmt, layout.sep, layout.header) == ("gru4rec", ",", False)
    engine = tokenise(str(p), layout, dtype=str, keep_default_na=False)
    assert engine.values.tolist() == [["1", "a b", "1400000000"], ["", "", ""], ["2", "c", "1400000001"]]
    raw = tokenise(p.open("rb"), layout, quoted=False, dtype=str, keep_default_na=False)
    assert raw.values.tolist() == [["1", '"a b"', "1400000000"], ["", "", ""], ["2", "c", "1400000001"]]
    # blank lines stay rows, so row i is file line first + i
    assert line_numbers(5, len(raw)).tolist() == [5, 6, 7]
    assert line_numbers(5, 3).dtype == np.int64


def test_field_count_per_separator(tmp_path):
    tsv = detect_layout(str(_write(tmp_path, "SessionId\tItemId\tTime\n", "h.tsv")))
    ws = detect_layout(str(_write(tmp_path, "1  5 1400000000\n", "w.txt")))
    assert ws.sep == r"\s+"
    assert [field_count(b, tsv) for b in (b"1\t2\t3", b"1\t2", b"1\t\t2\t", b"1 2 3")] == [3, 2, 4, 1]
    assert [field_count(b, ws) for b in (b"1  2 3", b" 1 2 ", b"1\t2 3 4")] == [3, 2, 4]


def test_both_readers_number_a_short_row_alike(tmp_path):
    p = _write(tmp_path, "SessionId\tItemId\tTime\n1\t2\t1400000000\n\n1\t3\n2\t007\t1400000002\n", "s.tsv")
    with pytest.raises(DataFormatError) as err:
        read_events(p)
    assert (err.value.line, str(err.value).endswith("line 4: missing Time")) == (4, True)
    layout = detect_layout(str(p))
    blocks = list(read_blocks(str(p), layout))
    assert [[str(e) for e in errors] for _, _, errors, _, _ in blocks] == [["line 4: expected 3 fields, got 2"]]
    chunk = blocks[0][1]
    assert (chunk.session.tolist(), chunk.item.tolist(), chunk.time_us.tolist()) == (
        ["1", "2"], ["2", "007"], [1400000000000000, 1400000002000000])
    assert [rows for _, _, _, rows, _ in blocks] == [3]  # data rows: the blank line is none
