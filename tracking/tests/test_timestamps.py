"""Client timestamps never reach the database in a form PostgreSQL refuses: the events API answers
400 with the item's field error, the importer skips the line by number, the export command says
what is wrong; accepted times are stored as the instant they name, in UTC."""
import json
from datetime import datetime, timedelta, timezone

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from tracking.importers import import_file
from tracking.models import Event

URL = "/api/events/"
SESSION = "2b3c4d5e-6f70-4812-9a3b-4c5d6e7f8091"
OFFSET_ERROR = ["UTC offset out of range: -15:59 .. +15:59."]


def _post(events):
    return APIClient().post(URL, data=json.dumps({"session": SESSION, "events": events}),
                            content_type="application/json")


# Each value both alone (the fast path) and with an extra field that only the declared serializer
# checks (a position given as null), so both validation paths are held to the same rule.
def _variants(stamp, product):
    return [{"type": "view", "product": product, "timestamp": stamp},
            {"type": "view", "product": product, "timestamp": stamp, "position": None, "source": "grid"}]


@pytest.mark.parametrize("stamp", [
    "2025-01-01T10:00:00-16:00", "2025-01-01T10:00:00+16:00", "2025-01-01T10:00:00-23:59",
    "2025-01-01T10:00:00.123456+20:30", "2025-01-01T10:00-1600",
])
def test_offsets_postgres_cannot_store_are_a_400_with_the_field_error(products, stamp):
    for event in _variants(stamp, products[0].pk):
        response = _post([{"type": "view", "product": products[0].pk}, event])
        assert response.status_code == 400, response.content
        assert response.json() == {"events": {"1": {"timestamp": OFFSET_ERROR}}}
    assert Event.objects.count() == 0


@pytest.mark.parametrize("stamp", [
    "2025-01-01T10:00:00+24:00", "2025-01-01T10:00:00+99:00", "9999-12-31T23:59:59-10:00",
    "0001-01-01T00:00:00+10:00", "1989-12-31T23:59:59+00:00",
])
def test_impossible_or_out_of_range_times_are_a_400(products, stamp):
    for event in _variants(stamp, products[0].pk):
        response = _post([event])
        assert response.status_code == 400, response.content
        assert list(response.json()["events"]["0"]) == ["timestamp"]
    assert Event.objects.count() == 0


@pytest.mark.parametrize("stamp", ["1989-12-31T23:59:59Z", "1989-12-31T23:59:59.999999+00:00"])
def test_times_before_1990_or_over_an_hour_ahead_answer_out_of_range(products, stamp):
    """The range's own message, for both ends and both validation paths; 1990 itself is taken."""
    ahead = (datetime.now(timezone.utc) + timedelta(hours=1, minutes=5)).isoformat()
    for bad in (stamp, ahead):
        for event in _variants(bad, products[0].pk):
            response = _post([event])
            assert response.status_code == 400, response.content
            assert response.json() == {"events": {"0": {"timestamp": ["Timestamp out of range."]}}}
    for event in _variants("1990-01-01T00:00:00Z", products[0].pk):
        assert _post([event]).status_code == 201
    assert Event.objects.count() == 2


@pytest.mark.parametrize("stamp, utc", [
    ("2025-01-01T10:00:00-15:59", datetime(2025, 1, 2, 1, 59, tzinfo=timezone.utc)),
    ("2025-01-01T10:00:00+15:59", datetime(2024, 12, 31, 18, 1, tzinfo=timezone.utc)),
    ("2025-01-01T10:00:00+05:30:15", datetime(2025, 1, 1, 4, 29, 45, tzinfo=timezone.utc)),
    ("2025-01-01T10:00:00Z", datetime(2025, 1, 1, 10, tzinfo=timezone.utc)),
])
def test_accepted_times_are_stored_as_the_instant_they_name(products, stamp, utc):
    response = _post(_variants(stamp, products[0].pk))
    assert response.status_code == 201, response.content
    assert list(Event.objects.values_list("timestamp", flat=True)) == [utc, utc]


def test_the_importer_skips_far_offsets_by_line_number(db, tmp_path):
    path = tmp_path / "clicks.dat"
    path.write_text(
        "1,2014-04-07T10:51:09.277Z,214536500,0\n"
        "1,2014-04-07T10:52:09.277-16:00,214536500,0\n"
        "1,2014-04-07T10:53:09.277+99:00,214536500,0\n"
        "1,2014-04-07T10:54:09.277+15:30,214536500,0\n"
        "2,2014-04-07T10:55:09+1700,214536500,0\n"
        "2,9999-12-31T23:59:59-10:00,214536500,0\n"
    )
    stats = import_file(str(path))
    assert [(e.line, e.message) for e in stats.errors] == [
        (2, "bad timestamp (UTC offset beyond +-15:59)"),
        (3, "bad timestamp"),
        (5, "bad timestamp (UTC offset beyond +-15:59)"),
        (6, "timestamp out of range (1990 .. now + 1 day)"),
    ]
    assert stats.imported == 2
    assert sorted(Event.objects.values_list("timestamp", flat=True)) == [
        datetime(2014, 4, 6, 19, 24, 9, 277000, tzinfo=timezone.utc),
        datetime(2014, 4, 7, 10, 51, 9, 277000, tzinfo=timezone.utc),
    ]


def test_export_takes_any_offset_as_its_instant_and_refuses_impossible_moments(db, tmp_path, capsys):
    with pytest.raises(CommandError, match="no view,click events from 2025-01-01T16:00:00[+]00:00 to now"):
        call_command("export_sessions", str(tmp_path), "--since", "2025-01-01T00:00:00-16:00")
    for value in ("9999-12-31T23:59:59-10:00", "2025-13-01", "2025-01-01T10:00:00+99:00"):
        with pytest.raises(CommandError):
            call_command("export_sessions", str(tmp_path), "--until", value)


def test_the_moment_option_is_utc(db):
    from tracking.management.commands.export_sessions import _moment

    assert _moment("2025-01-01T00:00:00-16:00") == datetime(2025, 1, 1, 16, tzinfo=timezone.utc)
    assert _moment("2025-01-01") == datetime(2025, 1, 1, tzinfo=timezone.utc)
    assert _moment("2025-01-01T00:00:00-16:00").utcoffset() == timedelta(0)
