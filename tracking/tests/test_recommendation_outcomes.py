"""What a model version's recommendations did (the admin's online charts): only what the shop can
vouch for, each (visit, product) once, carts and orders only after a click on that version's card."""
import datetime as dt

import pytest
from django.utils import timezone

from tracking.models import Event, Visit
from tracking.selectors import recommendation_outcomes

pytestmark = pytest.mark.django_db

DAY1 = timezone.make_aware(dt.datetime(2026, 11, 2, 10, 0), dt.timezone.utc)
DAY2 = DAY1 + dt.timedelta(days=1)


def ev(visit, product, kind, at, version="", source="", trusted=True):
    return Event(visit=visit, product=product, event_type=kind, timestamp=at, model_version=version,
                 source=source, trusted=trusted, is_staff=visit.is_staff)


def test_counts_served_events_and_what_followed_a_click(products):
    a, b, c = products[:3]
    v1, v2, staff, v3 = Visit.objects.create(), Visit.objects.create(), Visit.objects.create(is_staff=True), \
        Visit.objects.create()
    m = timezone.timedelta(minutes=1)
    Event.objects.bulk_create([
        # visit 1, day 1: two impressions of A (counted once), one of B; a click on A, then A to cart and bought
        ev(v1, a, "impression", DAY1, "g1", "recommended"), ev(v1, a, "impression", DAY1 + m, "g1", "recommended"),
        ev(v1, b, "impression", DAY1, "g1", "similar"),
        ev(v1, a, "click", DAY1 + 2 * m, "g1", "recommended"),
        ev(v1, a, "add_to_cart", DAY1 + 3 * m, source="cart"), ev(v1, a, "add_to_cart", DAY1 + 4 * m, source="cart"),
        ev(v1, a, "purchase", DAY1 + 5 * m),
        # B went to the cart BEFORE any click on it, and was never clicked: no credit
        ev(v1, b, "add_to_cart", DAY1 - m, source="cart"),
        # visit 2, day 2: an impression and a click of C; an untrusted click (no token) is not counted
        ev(v2, c, "impression", DAY2, "g1", "recommended"), ev(v2, c, "click", DAY2 + m, "g1", "recommended"),
        ev(v2, b, "click", DAY2 + m, "g1", "recommended", trusted=False),
        ev(v2, c, "add_to_cart", DAY2 + 2 * m, source="cart"),
        # staff traffic is not counted
        ev(staff, a, "impression", DAY1, "g1", "recommended"), ev(staff, a, "click", DAY1, "g1", "recommended"),
        ev(staff, a, "purchase", DAY1 + m),
        # another version's card, and a grid click that names no recommendation
        ev(v3, a, "impression", DAY2, "s1", "recommended"), ev(v3, a, "click", DAY2, "", "grid"),
        ev(v3, a, "purchase", DAY2 + m),
    ])
    out = recommendation_outcomes(["g1", "s1", "nothing"])
    g1 = out["g1"]
    assert g1["total"] == {"impressions": 3, "clicks": 2, "add_to_cart": 2, "orders": 1, "ctr": 2 / 3}
    assert g1["days"] == [
        {"day": DAY1.date(), "impressions": 2, "clicks": 1, "add_to_cart": 1, "orders": 1},
        {"day": DAY2.date(), "impressions": 1, "clicks": 1, "add_to_cart": 1, "orders": 0},
    ]
    assert out["s1"]["total"] == {"impressions": 1, "clicks": 0, "add_to_cart": 0, "orders": 0, "ctr": 0.0}
    assert out["nothing"] == {"total": {"impressions": 0, "clicks": 0, "add_to_cart": 0, "orders": 0, "ctr": None},
                              "days": []}
    # since: day 2 only
    assert recommendation_outcomes(["g1"], since=DAY2)["g1"]["total"]["impressions"] == 1


def test_no_versions_is_no_query(django_assert_num_queries):
    with django_assert_num_queries(0):
        assert recommendation_outcomes(["", ""]) == {}
