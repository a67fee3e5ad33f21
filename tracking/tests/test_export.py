from datetime import datetime, timedelta, timezone

import pytest
from django.core.management import call_command

from catalog.models import Product
from tracking.models import Event, Visit
from tracking.services import sessions_export


T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)


def _session(items, day, staff=False, types=None):
    visit = Visit.objects.create(is_staff=staff, source="import")
    products = {p.external_id: p for p in Product.objects.all()}
    for i, ext in enumerate(items):
        if ext not in products:
            products[ext] = Product.objects.create(external_id=ext, name=ext, slug=ext.lower())
        Event.objects.create(visit=visit, product=products[ext], event_type=(types or {}).get(i, "view"),
                             timestamp=T0 + timedelta(days=day, seconds=10 * i), is_staff=staff)
    return visit


@pytest.fixture
def small_case(db):
    s = {}
    # train (ends more than a day before the last event)
    s[1] = _session("ABC", 0)
    s[2] = _session("ABC", 0.5)
    s[3] = _session("CAD", 0.6)  # D has 2 events: dropped -> C A
    s[4] = _session("BC", 0.7)
    s[5] = _session("AD", 0.8)  # -> A only: dropped
    s[11] = _session("B", 0.9)  # length 1: dropped
    # test (ends within the last day)
    s[6] = _session("ABC", 2.5)
    s[7] = _session("EEEA", 2.6)  # E (5 events, all in test) is not in train -> A only: dropped
    s[8] = _session("EEB", 2.9)  # the last event (2.9 days + 20 s) -> B only: dropped
    s[9] = _session("AB", 3.5, staff=True)  # staff: excluded, does not move the split
    s[10] = _session("AB", 2.95, types={1: "impression"})  # impressions are not exported: length 1
    return s


def test_export_small_case(small_case, tmp_path):
    s = small_case
    stats = sessions_export(tmp_path, test_days=1)
    assert (stats["train_events"], stats["train_sessions"], stats["train_items"]) == (10, 4, 3)
    assert (stats["test_events"], stats["test_sessions"]) == (3, 1)
    assert stats["events_read"] == 25  # the non-staff views (the impression and staff events are not read)
    t = lambda day, i: f"{(T0 + timedelta(days=day, seconds=10 * i)).timestamp():.3f}"  # noqa: E731
    train = (tmp_path / "train.tsv").read_text().splitlines()
    assert train == ["SessionId\tItemId\tTime"] + [
        f"{s[1].pk}\tA\t{t(0, 0)}", f"{s[1].pk}\tB\t{t(0, 1)}", f"{s[1].pk}\tC\t{t(0, 2)}",
        f"{s[2].pk}\tA\t{t(0.5, 0)}", f"{s[2].pk}\tB\t{t(0.5, 1)}", f"{s[2].pk}\tC\t{t(0.5, 2)}",
        f"{s[3].pk}\tC\t{t(0.6, 0)}", f"{s[3].pk}\tA\t{t(0.6, 1)}",
        f"{s[4].pk}\tB\t{t(0.7, 0)}", f"{s[4].pk}\tC\t{t(0.7, 1)}",
    ]
    test = (tmp_path / "test.tsv").read_text().splitlines()
    assert test == ["SessionId\tItemId\tTime",
                    f"{s[6].pk}\tA\t{t(2.5, 0)}", f"{s[6].pk}\tB\t{t(2.5, 1)}", f"{s[6].pk}\tC\t{t(2.5, 2)}"]


def test_export_time_window_and_types(small_case, tmp_path):
    stats = sessions_export(tmp_path, since=T0 + timedelta(days=2), until=T0 + timedelta(days=3), test_days=0.3,
                            event_types=("view",))
    # only sessions 6, 7, 8, 10 are in the window; with so few events no item reaches support 5
    assert stats["events_read"] == 11
    assert (stats["train_events"], stats["test_events"]) == (0, 0)
    with pytest.raises(ValueError):
        sessions_export(tmp_path, event_types=("view", "hover"))


def test_export_command_prints_stats(small_case, tmp_path, capsys):
    call_command("export_sessions", str(tmp_path), "--test-days", "1")
    out = capsys.readouterr().out
    assert "train: 10 events, 4 sessions, 3 items" in out
    assert "test: 3 events, 1 sessions" in out and len(out.splitlines()) == 1


def test_training_data_in_memory_is_the_export(small_case):
    from tracking.selectors import sessions_training_data

    s = small_case
    pk = {p.external_id: p.pk for p in Product.objects.all()}
    data = sessions_training_data(test_days=1)
    us = lambda day, i: int((T0 + timedelta(days=day, seconds=10 * i)).timestamp()) * 1_000_000  # noqa: E731
    assert data.train.session.tolist() == [s[1].pk] * 3 + [s[2].pk] * 3 + [s[3].pk] * 2 + [s[4].pk] * 2
    assert data.train.item.tolist() == [pk[x] for x in "ABCABCCABC"]
    assert data.train.time_us.tolist() == [us(0, 0), us(0, 1), us(0, 2), us(0.5, 0), us(0.5, 1), us(0.5, 2),
                                           us(0.6, 0), us(0.6, 1), us(0.7, 0), us(0.7, 1)]
    assert data.test.session.tolist() == [s[6].pk] * 3
    assert data.test.item.tolist() == [pk[x] for x in "ABC"]
    assert (data.events_read, data.event_types) == (25, ("view", "click"))
    with pytest.raises(ValueError, match="unknown event types: hover"):
        sessions_training_data(event_types=("view", "hover"))
