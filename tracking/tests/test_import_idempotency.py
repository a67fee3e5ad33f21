"""Re-imports add nothing without a unique index on the events: whole files (the ledger), files
cut short or cut into other blocks (visits from before: the anti-join), interrupted imports, files
that continue sessions of earlier ones, and live events on an imported visit."""
from datetime import datetime, timezone

import pytest
from django.db import connection
from django.db.models import Count

from catalog.models import Product
from tracking.importers import import_file, visit_uuid_for
from tracking.models import Event, ImportBlock, Visit
from tracking.services import events_record_for_api


def _rows(sessions: int, per_session: int = 3, start_session: int = 1) -> list[str]:
    """YOOCHOOSE lines, one session after the other, with one exact repeat in every session."""
    lines = []
    for s in range(start_session, start_session + sessions):
        for k in range(per_session):
            lines.append(f"{s},2014-04-07T{10 + s % 10:02d}:{k:02d}:09.277Z,{214536500 + (s + k) % 7},0\n")
        lines.append(lines[-1])  # a real repeated row of the log: kept
    return lines


def _write(path, lines):
    path.write_text("".join(lines))
    return str(path)


def _event_keys():
    return sorted(Event.objects.values_list("visit__uuid", "timestamp", "product__external_id", "import_seq"))


def _no_duplicates():
    dup = (Event.objects.values("visit", "timestamp", "product", "event_type", "import_seq")
           .annotate(n=Count("id")).filter(n__gt=1))
    assert not dup.exists()


def test_prefix_then_whole_file_adds_the_rest_once(db, tmp_path):
    lines = _rows(40)
    # The prefix ends in the middle of a session and of a block: the whole file's blocks differ.
    prefix = import_file(_write(tmp_path / "prefix.dat", lines[:70]), block_bytes=600)
    assert prefix.imported == 70
    whole = import_file(_write(tmp_path / "whole.dat", lines), block_bytes=600)
    assert (whole.rows_read, whole.imported, whole.duplicates) == (160, 90, 70)
    assert Event.objects.count() == 160
    assert Visit.objects.count() == 40
    _no_duplicates()
    # the session cut by the prefix was extended, not duplicated
    cut = Visit.objects.get(uuid=visit_uuid_for("yoochoose", "18"))
    assert Event.objects.filter(visit=cut).count() == 4


def test_other_block_bounds_add_nothing(db, tmp_path):
    path = _write(tmp_path / "a.dat", _rows(30))
    first = import_file(path, block_bytes=700)
    before = _event_keys()
    for size in (500, 1300, 64 * 1024):
        again = import_file(path, block_bytes=size)
        assert (again.imported, again.duplicates, again.visits_created) == (0, 120, 0)
    assert first.imported == 120 and _event_keys() == before


def test_interrupted_import_is_completed_by_a_reimport(db, tmp_path):
    path = _write(tmp_path / "a.dat", _rows(30))

    def stop_after_two_blocks(stats):
        if stats.imported >= 40:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        import_file(path, block_bytes=400, on_block=stop_after_two_blocks)
    done = Event.objects.count()
    assert 0 < done < 120
    rest = import_file(path, block_bytes=400)
    assert (rest.imported, rest.duplicates) == (120 - done, done)
    assert Event.objects.count() == 120
    _no_duplicates()


def test_a_file_continuing_earlier_sessions(db, tmp_path):
    import_file(_write(tmp_path / "a.dat", _rows(5)))
    visit = Visit.objects.get(uuid=visit_uuid_for("yoochoose", "5"))
    # b repeats session 5's rows (already there) and adds a later event to it, and a new session
    later = "5,2014-04-08T09:00:00.000Z,214536501,0\n"
    stats = import_file(_write(tmp_path / "b.dat", _rows(1, start_session=5) + [later] + _rows(1, start_session=6)))
    assert (stats.imported, stats.duplicates, stats.visits_created) == (5, 4, 1)
    visit.refresh_from_db()
    assert visit.last_seen == datetime(2014, 4, 8, 9, 0, tzinfo=timezone.utc)
    assert Event.objects.filter(visit=visit).count() == 5
    assert Visit.objects.count() == 6


def test_live_events_on_an_imported_visit_are_left_alone(db, tmp_path):
    path = _write(tmp_path / "a.dat", _rows(2))
    import_file(path)
    uuid = visit_uuid_for("yoochoose", "1")
    first = Event.objects.filter(visit__uuid=uuid).order_by("timestamp").first()
    # the same product at the same time, recorded live: another event, not an imported row
    product = Product.objects.get(pk=first.product_id)
    recorded = events_record_for_api(uuid, [{"type": "view", "product": product.pk, "timestamp": first.timestamp}])
    assert recorded.result["count"] == 1
    assert import_file(path, ledger=False).imported == 0
    assert Event.objects.filter(visit__uuid=uuid).count() == 5
    assert Event.objects.filter(visit__uuid=uuid, import_seq__isnull=True).count() == 1


def test_repeated_rows_across_block_bounds_are_all_kept(db, tmp_path):
    row = "7,2014-04-07T10:00:00.000Z,214536500,0\n"
    path = _write(tmp_path / "a.dat", [row] * 5 + ["8,2014-04-07T11:00:00.000Z,214536500,0\n"])
    stats = import_file(path, block_bytes=len(row) * 2)  # the five copies span three blocks
    assert stats.imported == 6
    assert sorted(Event.objects.filter(visit__uuid=visit_uuid_for("yoochoose", "7"))
                  .values_list("import_seq", flat=True)) == [0, 1, 2, 3, 4]
    assert import_file(path, block_bytes=len(row) * 3, ledger=False).imported == 0


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the copy path and its fallback are PostgreSQL's")
def test_copy_path_falls_back_to_the_upsert_and_returns(db, tmp_path):
    import_file(_write(tmp_path / "a.dat", _rows(10)))
    # 40 new sessions after 10 that exist: the first block's copy meets visits from before
    lines = _rows(10) + _rows(40, start_session=11)
    stats = import_file(_write(tmp_path / "b.dat", lines), block_bytes=600)
    assert (stats.imported, stats.duplicates, stats.visits_created) == (160, 40, 40)
    assert Visit.objects.count() == 50
    _no_duplicates()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the ledger is PostgreSQL's")
def test_only_clean_blocks_enter_the_ledger(db, tmp_path):
    lines = _rows(20)
    lines[30] = "x,bad,row\n"
    path = _write(tmp_path / "a.dat", lines)
    first = import_file(path, block_bytes=600)
    assert (first.skipped, [e.line for e in first.errors]) == (1, [31])
    again = import_file(path, block_bytes=600)
    assert (again.imported, again.duplicates, again.skipped, [e.line for e in again.errors]) == (0, 79, 1, [31])
    assert ImportBlock.objects.filter(rows__gt=0).count() == ImportBlock.objects.count() > 0
    assert Event.objects.count() == 79


@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent writers need PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_concurrent_imports_of_one_file_cut_differently(tmp_path):
    # No ledger entry is shared (other block bounds): the visit locks and the anti-join keep
    # every row once.
    import threading

    from django.db import connections

    path = _write(tmp_path / "a.dat", _rows(150))
    results, failures = [], []

    def run(size):
        try:
            results.append(import_file(path, block_bytes=size))
        except Exception as exc:  # reported below
            failures.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(size,)) for size in (700, 1100, 64 * 1024)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures
    assert sum(r.imported for r in results) == 600
    assert (Event.objects.count(), Visit.objects.count()) == (600, 150)
    _no_duplicates()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent writers need PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_a_concurrent_import_waits_for_the_visits_it_shares(tmp_path, monkeypatch):
    # A has written its rows of visits from before but not committed; B, with the same rows in
    # other bytes (no shared ledger entry), must wait for A and then add only what A did not.
    # The race is forced, not hoped for: A holds its transaction open until B is seen (in
    # PostgreSQL's lock manager) waiting on a lock A holds, and the test fails if that never happens.
    import threading
    import time

    from django.db import connections

    from tracking import importers

    bound = 60  # seconds: a failure bound for each wait, not a speed claim
    # the visits and the product exist: nothing but the visit locks can make B wait for A
    base = _rows(5, per_session=1) + ["9,2014-04-07T12:00:00.000Z,214536599,0\n"]
    import_file(_write(tmp_path / "base.dat", base))
    new_rows = [f"{s},2014-04-07T12:00:00.000Z,214536599,0\n" for s in range(1, 6)]
    a_path = _write(tmp_path / "a.dat", new_rows)
    b_path = _write(tmp_path / "b.dat", new_rows[::-1] + ["6,2014-04-07T12:00:00.000Z,214536599,0\n"])
    a_wrote, a_release = threading.Event(), threading.Event()
    original = importers._PostgresWriter.events

    def events(self, *args):
        inserted = original(self, *args)
        if threading.current_thread().name == "A" and not a_wrote.is_set():
            a_wrote.set()
            a_release.wait(bound)  # still uncommitted: B must not add the same rows meanwhile
        return inserted

    monkeypatch.setattr(importers._PostgresWriter, "events", events)
    pids, results, failures = {}, {}, {}

    def run(name, path):
        try:
            with connections["default"].cursor() as cursor:  # this thread's connection, the import's
                cursor.execute("SELECT pg_backend_pid()")
                pids[name] = cursor.fetchone()[0]
            results[name] = import_file(path).imported
        except Exception as exc:  # reported below
            failures[name] = exc
        finally:
            connections.close_all()

    a = threading.Thread(target=run, args=("A", a_path), name="A")
    b = threading.Thread(target=run, args=("B", b_path), name="B")
    blockers = []
    try:
        a.start()
        assert a_wrote.wait(bound), "A never wrote its rows"
        b.start()
        deadline = time.monotonic() + bound
        with connection.cursor() as cursor:
            while pids["A"] not in blockers and time.monotonic() < deadline and b.is_alive():
                time.sleep(0.02)
                if "B" in pids:
                    cursor.execute("SELECT pg_blocking_pids(%s)", [pids["B"]])
                    blockers = cursor.fetchone()[0]
    finally:
        a_release.set()
        a.join()
        b.join()
    assert not failures
    # the race happened: B was inside its import, waiting on a lock of A's uncommitted transaction
    assert pids["A"] in blockers, f"B never waited for A (B {'finished' if not b.is_alive() else 'ran'} meanwhile)"
    assert results == {"A": 5, "B": 1}
    assert Event.objects.count() == 11 + 5 + 1
    _no_duplicates()


def test_a_block_aborted_by_a_deadlock_is_written_again(db, tmp_path, monkeypatch):
    # PostgreSQL breaks a deadlock between two imports by aborting one transaction: the block's
    # products, visits and events are rolled back and the block is written again, with nothing
    # remembered from the aborted attempt (ids of rolled-back products or visits).
    from django.db import DatabaseError

    from tracking import importers

    class Deadlock(DatabaseError):
        pgcode = "40P01"

    original = importers._Writer.events
    calls = []

    def events(self, *args):
        inserted = original(self, *args)
        calls.append(inserted)
        if len(calls) == 2:
            raise Deadlock("deadlock detected")
        return inserted

    monkeypatch.setattr(importers._Writer, "events", events)
    monkeypatch.setattr(importers._PostgresWriter, "events", events, raising=False)
    lines = _rows(20)
    lines[30] = "21,2014-04-07T12:00:00.000Z,299999999,0\n"  # a product only the aborted block creates
    stats = import_file(_write(tmp_path / "a.dat", lines), block_bytes=800)
    assert len(calls) > 3
    assert (stats.imported, stats.duplicates, stats.visits_created, stats.products_created) == (80, 0, 21, 8)
    assert Event.objects.count() == 80
    assert not Event.objects.exclude(product_id__in=Product.objects.values("pk")).exists()
    assert not Event.objects.exclude(visit_id__in=Visit.objects.values("pk")).exists()
    _no_duplicates()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the BRIN time index is PostgreSQL's")
def test_the_time_index_covers_what_an_import_wrote(db, tmp_path):
    # An unsummarised BRIN range matches every time range: scans would read all imported pages.
    stats = import_file(_write(tmp_path / "a.dat", _rows(2500)), block_bytes=64 * 1024)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_relation_size('tracking_event') / current_setting('block_size')::int")
        assert cursor.fetchone()[0] > 3 * 32  # several page ranges
        cursor.execute("SELECT brin_summarize_new_values('event_timestamp_brin')")
        assert cursor.fetchone()[0] == 0
    assert stats.imported == 10_000
