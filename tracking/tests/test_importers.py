from datetime import datetime, timezone

import pandas as pd
import pytest
from django.core.management import CommandError, call_command
from django.db.models import Count

from catalog.models import Product
from tracking.importers import detect_layout, import_file, visit_uuid_for
from tracking.models import Event, Visit
from tracking.services import sessions_export

from .conftest import shared_file

YOOCHOOSE_BAD = """\
1,2014-04-07T10:51:09.277Z,214536502,0
1,2014-04-07T10:54:09.868Z,214536500,0
x,2014-04-07T10:54:09.868Z,214536500,0
2,not-a-time,214536500,0
2,2014-04-07T11:00:00.000Z,214536500
2,2014-04-07T11:00:00.000Z,214536500,0,9

2,2014-04-07T11:01:00.000Z,214536501,3
2,2099-04-07T11:01:00.000Z,214536501,3
3,2014-04-07T11:01:00.000Z,-5,0
3,2014-04-07T11:01:00Z,214536501,S
3,2014-04-07T11:01:00.000Z,214536501,0
"""


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_yoochoose_bad_rows_reported_valid_rows_kept(db, tmp_path):
    path = _write(tmp_path, "clicks.dat", YOOCHOOSE_BAD)
    stats = import_file(str(path))
    assert stats.format == "yoochoose"
    assert [e.line for e in stats.errors] == [3, 4, 5, 6, 9, 10]
    assert [e.message for e in stats.errors] == [
        "bad session id (expected an integer)", "bad timestamp", "expected 4 fields, got 3",
        "expected 4 fields, got 5", "timestamp out of range (1990 .. now + 1 day)", "bad item id (expected an integer)",
    ]
    assert (stats.rows_read, stats.imported, stats.skipped, stats.duplicates) == (11, 5, 6, 0)
    assert (stats.sessions, stats.visits_created, stats.products_created) == (3, 3, 3)
    # the two identical rows of session 3 (lines 11 and 12) are both kept
    visit3 = Visit.objects.get(uuid=visit_uuid_for("yoochoose", "3"))
    assert list(Event.objects.filter(visit=visit3).values_list("import_seq", flat=True).order_by("import_seq")) == [0, 1]
    visit1 = Visit.objects.get(uuid=visit_uuid_for("yoochoose", "1"))
    assert visit1.source == "import"
    assert visit1.started == datetime(2014, 4, 7, 10, 51, 9, 277000, tzinfo=timezone.utc)
    assert visit1.last_seen == datetime(2014, 4, 7, 10, 54, 9, 868000, tzinfo=timezone.utc)
    events1 = list(Event.objects.filter(visit=visit1).order_by("timestamp").values_list(
        "product__external_id", "event_type", "history_length", "is_staff"))
    assert events1 == [("214536502", "view", None, False), ("214536500", "view", None, False)]
    # category from the YOOCHOOSE column when set and not "0"
    assert Product.objects.get(external_id="214536501").category.slug == "3"
    assert Product.objects.get(external_id="214536502").category is None


def test_reimport_adds_nothing(db, tmp_path):
    path = _write(tmp_path, "clicks.dat", YOOCHOOSE_BAD)
    import_file(str(path))
    again = import_file(str(path))
    assert (again.imported, again.duplicates, again.visits_created, again.products_created) == (0, 5, 0, 0)
    assert Event.objects.count() == 5
    assert Visit.objects.count() == 3


def test_strict_writes_nothing(db, tmp_path):
    path = _write(tmp_path, "clicks.dat", YOOCHOOSE_BAD)
    stats = import_file(str(path), strict=True)
    assert stats.strict_failed and stats.skipped == 6 and stats.imported == 0
    assert (Event.objects.count(), Visit.objects.count(), Product.objects.count()) == (0, 0, 0)


def test_command_strict_fails_and_lists_lines(db, tmp_path, capsys):
    path = _write(tmp_path, "clicks.dat", YOOCHOOSE_BAD)
    with pytest.raises(CommandError, match="6 bad rows"):
        call_command("import_events", str(path), "--strict", "--format", "yoochoose")
    err = capsys.readouterr().err
    assert "skipped line 3: bad session id" in err and "skipped line 10:" in err
    assert Event.objects.count() == 0


def test_command_imports_and_summarises(db, tmp_path, capsys):
    path = _write(tmp_path, "clicks.dat", YOOCHOOSE_BAD)
    call_command("import_events", str(path))
    out = capsys.readouterr().out
    assert "rows read 11, imported 5, skipped 6, duplicates 0, sessions 3 (3 new), products created 3" in out


GRU4REC_BAD = """\
SessionId\tItemId\tTime
10\t100\t1441495318252
10\t101\t1441495416363
11\t100\t14414954x
11\t\t1441495416363
11\t102\t1441495500000
11\t103\t1441495600000\textra
"""


def test_gru4rec_tsv_milliseconds_and_bad_rows(db, tmp_path):
    path = _write(tmp_path, "views.tsv", GRU4REC_BAD)
    layout = detect_layout(str(path))
    assert (layout.fmt, layout.sep, layout.header, layout.time_unit) == ("gru4rec", "\t", True, "ms")
    stats = import_file(str(path))
    assert [(e.line, e.message) for e in stats.errors] == [
        (4, "bad timestamp"), (5, "bad item id"), (7, "expected 3 fields, got 4"),
    ]
    assert (stats.rows_read, stats.imported, stats.skipped) == (6, 3, 3)
    first = Event.objects.get(product__external_id="101")
    assert first.timestamp == datetime(2015, 9, 5, 23, 23, 36, 363000, tzinfo=timezone.utc)


def test_gru4rec_seconds_without_header(db, tmp_path):
    path = _write(tmp_path, "s.tsv", "1\tA\t1396444666.940\n1\tB\t1396445162.515\n")
    layout = detect_layout(str(path))
    assert (layout.header, layout.time_unit) == (False, "s")
    stats = import_file(str(path), "gru4rec")
    assert stats.imported == 2
    assert sorted(Event.objects.values_list("timestamp", flat=True))[0] == datetime(
        2014, 4, 2, 13, 17, 46, 940000, tzinfo=timezone.utc)



def test_blank_lines_before_the_header(db, tmp_path):
    """The header is the first non-blank line: it is skipped wherever it is, not read as data
    (the import took the first line, a blank one, for the header and reported the real header as
    'line 3: bad timestamp')."""
    path = _write(tmp_path, "blank.tsv", "\n\nSessionId\tItemId\tTime\n1\tA\t1396444666\n1\tB\t1396445162\n")
    layout = detect_layout(str(path))
    assert (layout.header, layout.first) == (True, 3)
    stats = import_file(str(path))
    assert [(e.line, e.message) for e in stats.errors] == []
    assert (stats.rows_read, stats.imported) == (2, 2)


REES46 = """\
event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session
2019-10-01 00:00:00 UTC,view,44600062,2103807459595387724,,shiseido,35.79,541312140,72d76fde-8bb3-4e00-8c23-a032dfed738c
2019-10-01 00:00:01 UTC,cart,3900821,2053013552326770905,appliances.environment.water_heater,aqua,33.20,554748717,9333dfbd-b87a-4708-9857-6336556b0fcc
2019-10-01 00:00:02 UTC,purchase,3900821,2053013552326770905,appliances.environment.water_heater,aqua,33.20,554748717,9333dfbd-b87a-4708-9857-6336556b0fcc
2019-10-01 00:00:03 UTC,wishlist,3900821,2053013552326770905,,aqua,33.20,554748717,9333dfbd-b87a-4708-9857-6336556b0fcc
2019-10-01 00:00:04,view,3900821,2053013552326770905,,aqua,33.20,554748717,9333dfbd-b87a-4708-9857-6336556b0fcc
2019-10-01 00:00:05 UTC,view,3900821,2053013552326770905,,aqua,33.20,554748717,
"""


def test_rees46_types_categories_and_bad_rows(db, tmp_path):
    path = _write(tmp_path, "rees.csv", REES46)
    stats = import_file(str(path))
    assert stats.format == "rees46"
    assert [(e.line, e.message) for e in stats.errors] == [
        (5, "unknown event_type"), (6, "bad timestamp"), (7, "bad session id"),
    ]
    assert stats.imported == 3
    assert sorted(Event.objects.values_list("event_type", flat=True)) == ["add_to_cart", "purchase", "view"]
    assert Product.objects.get(external_id="3900821").category.slug == "appliances-environment-water_heater"


def test_blocks_split_anywhere(db, tmp_path):
    # Tiny blocks: lines cross block boundaries, errors keep their line numbers.
    path = _write(tmp_path, "clicks.dat", YOOCHOOSE_BAD)
    stats = import_file(str(path), block_bytes=50)
    assert [e.line for e in stats.errors] == [3, 4, 5, 6, 9, 10]
    assert stats.imported == 5


# --- the shared real files --------------------------------------------------------------

def test_yoochoose_week_file_import_reimport_and_export(db, tmp_path):
    # One test for the three checks, so the week is imported once: import, idempotent re-import,
    # and the export giving the reference split (data/splits/yoochoose-week) exactly.
    path = shared_file("yoochoose-week", "yoochoose-clicks-week.dat")
    reference = shared_file("splits", "yoochoose-week", "train.tsv").parent
    stats = import_file(str(path))
    assert (stats.rows_read, stats.imported, stats.skipped, stats.duplicates) == (193_393, 193_393, 0, 0)
    assert (stats.sessions, stats.products_created) == (47_642, 10_019)
    again = import_file(str(path))
    assert (again.imported, again.duplicates) == (0, 193_393)
    assert Event.objects.count() == 193_393

    stats = sessions_export(tmp_path, test_days=1)
    assert (stats["train_events"], stats["train_sessions"], stats["train_items"]) == (152_462, 37_877, 4_869)
    assert (stats["test_events"], stats["test_sessions"]) == (27_952, 7_122)
    for name in ("train.tsv", "test.tsv"):
        ours = pd.read_csv(tmp_path / name, sep="\t", dtype={"ItemId": str})
        ref = pd.read_csv(reference / name, sep="\t", dtype={"ItemId": str})
        assert ours["ItemId"].value_counts().sort_index().equals(ref["ItemId"].value_counts().sort_index())
        assert sorted(ours["Time"].round(3)) == sorted(ref["Time"].round(3))


def test_retailrocket_files(db):
    train = shared_file("retailrocket-views", "retailrocket_processed_view_train_valid.tsv")
    test = shared_file("retailrocket-views", "retailrocket_processed_view_test.tsv")
    a = import_file(str(train))
    b = import_file(str(test))
    assert (a.format, a.rows_read, a.imported, a.skipped) == ("gru4rec", 33_812, 33_812, 0)
    assert (b.rows_read, b.imported, b.skipped) == (29_148, 29_148, 0)
    assert Event.objects.filter(event_type="view").count() == 62_960


def test_rees46_head_file(db):
    path = shared_file("rees46-head", "2019-Oct-head.csv")
    stats = import_file(str(path))
    # The file's last line is cut short (no user_session, no newline): reported and skipped.
    assert (stats.format, stats.rows_read, stats.imported, stats.skipped, stats.duplicates) == (
        "rees46", 17_435, 17_434, 1, 0)
    assert [(e.line, e.message) for e in stats.errors] == [(17_436, "expected 9 fields, got 8")]
    counts = dict(Event.objects.values_list("event_type").annotate(n=Count("id")))
    # three rows are exact repeats (same second, type, product, session): all kept
    assert counts == {"view": 17_055, "add_to_cart": 165, "purchase": 214}


def test_the_formats_event_names_map_to_this_apps_codes_in_order():
    from tracking.importers import _SHOP_TYPE_CODE, EVENT_TYPES
    from recommendations.gru4rec.formats import EVENT_NAMES

    assert [EVENT_TYPES[c] for c in _SHOP_TYPE_CODE] == list(EVENT_NAMES)
    # the importer sorts rows by type code: the mapping keeps the order
    assert _SHOP_TYPE_CODE.tolist() == sorted(_SHOP_TYPE_CODE.tolist())
