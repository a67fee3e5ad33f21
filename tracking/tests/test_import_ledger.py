"""The import ledger (tracking.ImportBlock): clean blocks imported once are skipped on re-import,
blocks with bad rows are not recorded, and a skipped block still numbers identical rows that
continue into the next block."""
from django.db import connection

import pytest

from tracking.importers import import_file
from tracking.models import Event, ImportBlock, Visit

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="the ledger is a PostgreSQL fast path")

X = "1,2014-04-07T10:51:09.277Z,214536502,0\n"
Y = "1,2014-04-07T10:54:09.868Z,214536500,0\n"
Z = "2,2014-04-07T10:57:00.306Z,214536506,0\n"
BLOCK = len(X) * 2  # two lines a block (all lines have the same length)


def test_clean_reimport_skips_recorded_blocks(db, tmp_path):
    path = tmp_path / "a.dat"
    path.write_text(X + Y + Z)
    first = import_file(str(path), block_bytes=BLOCK)
    assert (first.imported, ImportBlock.objects.count()) == (3, 2)
    again = import_file(str(path), block_bytes=BLOCK)
    assert (again.rows_read, again.imported, again.duplicates, again.sessions) == (3, 0, 3, 2)
    assert Event.objects.count() == 3


def test_skipped_block_still_numbers_repeated_rows_across_the_boundary(db, tmp_path):
    a = tmp_path / "a.dat"
    a.write_text(X + Y)
    import_file(str(a), block_bytes=BLOCK)
    b = tmp_path / "b.dat"
    b.write_text(X + Y + Y + Z)  # block 1 is a's only block (skipped); block 2 repeats Y
    stats = import_file(str(b), block_bytes=BLOCK)
    assert (stats.imported, stats.duplicates) == (2, 2)
    assert Event.objects.count() == 4
    assert sorted(Event.objects.filter(product__external_id="214536500").values_list("import_seq", flat=True)) == [0, 1]


def test_blocks_with_bad_rows_are_not_recorded(db, tmp_path):
    path = tmp_path / "bad.dat"
    path.write_text(X + "x,bad\n" + Z)
    first = import_file(str(path))
    assert (first.imported, first.skipped, ImportBlock.objects.count()) == (2, 1, 0)
    again = import_file(str(path))
    assert (again.imported, again.duplicates, again.skipped) == (0, 2, 1)
    assert [str(e) for e in again.errors] == [str(e) for e in first.errors]


def test_deleted_events_come_back_without_the_ledger(db, tmp_path):
    path = tmp_path / "a.dat"
    path.write_text(X + Y + Z)
    import_file(str(path))
    Event.objects.all().delete()
    assert import_file(str(path)).imported == 0  # the ledger trusts its record
    assert import_file(str(path), ledger=False).imported == 3
    assert Visit.objects.count() == 2
