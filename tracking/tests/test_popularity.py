from datetime import datetime, timedelta, timezone as dt_timezone

import pytest
from django.utils import timezone

from catalog.models import Product
from tracking.models import Event, ProductPopularity, Visit
from tracking.selectors import popular_products, trending_products
from tracking.services import popularity_refresh
from tracking.tasks import popularity_refresh as popularity_refresh_task


@pytest.fixture
def history(products):
    now = timezone.now()
    visit = Visit.objects.create()
    staff = Visit.objects.create(is_staff=True)
    p1, p2, p3, p4, p5 = products

    def ev(product, kind, days, v=visit, staff_flag=False):
        Event.objects.create(visit=v, product=product, event_type=kind, timestamp=now - timedelta(days=days),
                             is_staff=staff_flag)

    for _ in range(3):
        ev(p1, "view", 0.1)
    ev(p1, "purchase", 5)
    ev(p2, "view", 20)
    ev(p2, "view", 20.5)
    ev(p3, "view", 0.2, v=staff, staff_flag=True)  # staff: ignored
    ev(p4, "view", 40)  # outside every window
    ev(p5, "click", 0.1)  # clicks are not counted as views
    return now, products


def test_popularity_refresh_counts_windows(history):
    now, (p1, p2, p3, p4, p5) = history
    written = popularity_refresh(now=now)
    rows = {
        (r.product_id, r.window_days): (r.views, r.purchases, r.score)
        for r in ProductPopularity.objects.all()
    }
    assert written == 4
    assert rows == {
        (p1.pk, 1): (3, 0, 3.0),
        (p1.pk, 7): (3, 1, 13.0),
        (p1.pk, 30): (3, 1, 13.0),
        (p2.pk, 30): (2, 0, 2.0),
    }
    # running it again replaces, never adds
    assert popularity_refresh(now=now) == 4
    assert ProductPopularity.objects.count() == 4


def test_popular_and_trending_selectors(history):
    now, (p1, p2, p3, p4, p5) = history
    popularity_refresh(now=now)
    assert popular_products(2) == [p1, p2]
    # topped up with the most recent active products
    assert popular_products(4) == [p1, p2, p5, p4]
    assert popular_products(2, exclude=[p1.pk]) == [p2, p5]
    assert trending_products(3) == [p1, p2, p5]
    Product.objects.filter(pk=p1.pk).update(is_active=False)
    assert popular_products(1) == [p2]


def test_popular_products_fallback_when_empty(products):
    assert popular_products(3) == [products[4], products[3], products[2]]
    assert trending_products(2) == [products[4], products[3]]


def test_popularity_task_runs_the_service(history):
    popularity_refresh_task.delay()
    assert ProductPopularity.objects.count() == 4
    assert popularity_refresh_task.name == "tracking.tasks.popularity_refresh"


def test_popularity_ranking_is_the_one_reader(history, django_assert_num_queries):
    """popularity_ranking reads ProductPopularity for every popularity consumer (popular and
    trending products here, recommendations' popular pools): (product, category), one query."""
    from tracking.selectors import popularity_ranking

    now, (p1, p2, p3, p4, p5) = history
    popularity_refresh(now=now)
    with django_assert_num_queries(1):
        assert popularity_ranking(5) == [(p1.pk, p1.category_id), (p2.pk, p2.category_id)]
    assert popularity_ranking(5, exclude=[p1.pk]) == [(p2.pk, p2.category_id)]
    assert popularity_ranking(5, window=1, trending=True) == [(p1.pk, p1.category_id)]
    Product.objects.filter(pk=p1.pk).update(is_active=False)
    assert popularity_ranking(5) == [(p2.pk, p2.category_id)]


def test_popularity_windows_include_their_first_instant(products):
    """An event exactly at the start of a window counts in it (timestamp >= since), on SQLite too:
    there the raw statement's datetimes were bound as '... +00:00' text, which sorts after the
    column's own '...' text of the same instant, so the boundary event fell out of every window."""
    now = datetime(2025, 1, 8, 12, 0, tzinfo=dt_timezone.utc)
    visit = Visit.objects.create()
    for days, product in ((7, products[0]), (1, products[1]), (0, products[2])):
        Event.objects.create(visit=visit, product=product, event_type="view", timestamp=now - timedelta(days=days))
    assert popularity_refresh(now=now) == 8
    rows = {(r.product_id, r.window_days): r.views for r in ProductPopularity.objects.all()}
    assert rows == {(products[0].pk, 7): 1, (products[0].pk, 30): 1,
                    (products[1].pk, 1): 1, (products[1].pk, 7): 1, (products[1].pk, 30): 1,
                    (products[2].pk, 1): 1, (products[2].pk, 7): 1, (products[2].pk, 30): 1}
