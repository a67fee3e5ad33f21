from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.contrib.sessions.backends.db import SessionStore
from django.utils import timezone

from tracking import services
from tracking.http import visitor_from_request
from tracking.models import Event, Visit
from tracking.selectors import session_history


def _at(monkeypatch, moment):
    monkeypatch.setattr(services.timezone, "now", lambda: moment)


def test_visit_is_kept_while_active_and_renewed_after_inactivity(make_request, monkeypatch, settings):
    settings.VISIT_TIMEOUT_MINUTES = 30
    t0 = timezone.now()
    session = SessionStore()
    _at(monkeypatch, t0)
    first = services.visit_for_visitor(visitor_from_request(make_request(session=session)))
    # 29 minutes later: same visit, and last_seen moves on
    _at(monkeypatch, t0 + timedelta(minutes=29))
    again = services.visit_for_visitor(visitor_from_request(make_request(session=session)))
    assert again.pk == first.pk
    assert Visit.objects.get(pk=first.pk).last_seen == t0 + timedelta(minutes=29)
    # 29 more minutes (58 since the start, 29 since the last request): still the same visit
    _at(monkeypatch, t0 + timedelta(minutes=58))
    assert services.visit_for_visitor(visitor_from_request(make_request(session=session))).pk == first.pk
    # 31 minutes of inactivity: a new visit
    _at(monkeypatch, t0 + timedelta(minutes=89))
    new = services.visit_for_visitor(visitor_from_request(make_request(session=session)))
    assert new.pk != first.pk
    assert session[services.VISIT_SESSION_KEY]["uuid"] == str(new.uuid)
    assert Visit.objects.count() == 2


def test_visit_timeout_setting_is_used(make_request, monkeypatch, settings):
    settings.VISIT_TIMEOUT_MINUTES = 5
    t0 = timezone.now()
    session = SessionStore()
    _at(monkeypatch, t0)
    first = services.visit_for_visitor(visitor_from_request(make_request(session=session)))
    _at(monkeypatch, t0 + timedelta(minutes=6))
    assert services.visit_for_visitor(visitor_from_request(make_request(session=session))).pk != first.pk


def test_event_record_for_request_and_history_in_order(make_request, products):
    request = make_request()
    p1, p2, p3 = products[:3]
    e1 = services.event_record_for_visitor(visitor_from_request(request), "view", p1, source="grid", position=0)
    services.event_record_for_visitor(visitor_from_request(request), "impression", p3, source="recommended", position=1, model_version="m1")
    e3 = services.event_record_for_visitor(visitor_from_request(request), "click", p2.pk, source="recommended", position=1, model_version="m1")
    services.event_record_for_visitor(visitor_from_request(request), "add_to_cart", p2)
    visit = services.visit_for_visitor(visitor_from_request(request))
    assert session_history(visit.uuid) == [p1.pk, p2.pk]
    assert session_history(str(visit.uuid)) == [p1.pk, p2.pk]
    assert session_history(visit.pk, limit=1) == [p2.pk]
    assert (e1.history_length, e3.history_length) == (0, 1)
    e3.refresh_from_db()
    assert (e3.source, e3.position, e3.model_version, e3.is_staff, e3.user_id) == ("recommended", 1, "m1", False, None)
    assert Event.objects.filter(visit=visit).count() == 4


def test_free_text_labels_of_a_page_never_lose_the_event(make_request, products):
    """A link's ?src= reaches ``source`` as the page got it: over-long or with NUL it was refused by
    PostgreSQL and the view was lost; it is now cut to the column and stored."""
    request = make_request()
    event = services.event_record_for_visitor(visitor_from_request(request), "view", products[0], source="s\x00" + "x" * 60,
                                              model_version="v\x00" + "y" * 80)
    event.refresh_from_db()
    assert event.source == "s" + "x" * 31 and event.model_version == "v" + "y" * 63


def test_event_record_rejects_bad_input(make_request, products):
    request = make_request()
    with pytest.raises(ValueError):
        services.event_record_for_visitor(visitor_from_request(request), "hover", products[0])
    with pytest.raises(ValueError):
        services.event_record_for_visitor(visitor_from_request(request), "view", products[0], position=-1)
    assert Event.objects.count() == 0


def test_staff_traffic_is_flagged(make_request, products):
    staff = User.objects.create_user("boss", is_staff=True)
    request = make_request(user=staff)
    event = services.event_record_for_visitor(visitor_from_request(request), "view", products[0])
    assert event.is_staff is True
    assert event.user_id == staff.pk
    visit = Visit.objects.get(pk=event.visit_id)
    assert (visit.is_staff, visit.user_id, visit.source) == (True, staff.pk, "web")


def test_staff_flag_sticks_to_the_visit(make_request, products):
    session = SessionStore()
    services.event_record_for_visitor(visitor_from_request(make_request(session=session)), "view", products[0])
    staff = User.objects.create_user("boss", is_staff=True)
    services.event_record_for_visitor(visitor_from_request(make_request(user=staff, session=session)), "view", products[1])
    # later anonymous events of the same visit (after logout the session would be new anyway)
    later = services.event_record_for_visitor(visitor_from_request(make_request(session=session)), "view", products[2])
    assert later.is_staff is True
    assert Visit.objects.get().is_staff is True


def test_events_record_batch_counts_history(products):
    visit = services.visit_for_api("7d0f6a5e-1c1f-4b9a-9a49-0a5b7f3f9a11")
    outcome = services.events_record_batch(
        visit,
        [{"type": "view", "product": products[0].pk}, {"type": "impression", "product": products[1].pk},
         {"type": "click", "product": products[1].pk}],
    )
    assert outcome.result == {"count": 3, "ignored": []} and not outcome.replayed
    lengths = list(Event.objects.order_by("id").values_list("history_length", flat=True))
    assert lengths == [0, 1, 1]
    assert visit.source == "api"


def test_services_need_no_request_only_a_visitor(db, products):
    """A script, a task or a test records events with a Visitor built from plain values (issue #15)."""
    from tracking.visitors import Visitor

    session = SessionStore()
    staff = User.objects.create_user("ops", is_staff=True)
    visitor = Visitor(session=session, user=staff)
    event = services.event_record_for_visitor(visitor, "view", products[0], source="script")
    visit = services.visit_for_visitor(visitor)
    assert (event.visit_id, event.source, event.user_id, event.is_staff) == (visit.pk, "script", staff.pk, True)
    assert session[services.VISIT_SESSION_KEY]["uuid"] == str(visit.uuid) and visit.is_staff
    # A new visitor of the same session continues that visit.
    assert services.visit_for_visitor(Visitor(session=session)).pk == visit.pk


def test_a_gated_visitor_without_a_session_defers_its_event(db, products):
    """Under the gate (an HTTP GET without session or pending cookie) the event waits in the
    visitor's state for the pending cookie, and no visit starts."""
    from tracking.visitors import Visitor

    visitor = Visitor(session=SessionStore(), gated=True)
    assert services.event_record_for_visitor(visitor, "view", products[0], source="grid") is None
    assert Visit.objects.count() == 0 and Event.objects.count() == 0
    assert [(e["t"], e["p"], e["s"]) for e in visitor.state.deferred] == [("view", products[0].pk, "grid")]
    # An unsafe method (it passed CSRF with our cookie) may start one.
    posted = Visitor(session=SessionStore(), gated=True, safe_method=False)
    assert services.event_record_for_visitor(posted, "view", products[0]).visit_id == Visit.objects.get().pk
