"""The fast paginator must return exactly what plain OFFSET slicing returns, page by page."""
import pytest
from django.core.paginator import EmptyPage, Paginator
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog import pagination
from catalog.models import Product
from catalog.pagination import CachedCountPaginator
from catalog.selectors import PRODUCT_ORDERINGS
from catalog.tests.factories import CategoryFactory, ProductFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def products():
    cats = [CategoryFactory(slug="a"), CategoryFactory(slug="b")]
    made = [
        ProductFactory(name=f"P{(i * 7) % 23:02d}", price=(i * 13) % 10, category=cats[i % 2], is_active=i % 5 != 0)
        for i in range(47)
    ]
    return made


@pytest.fixture
def small_anchors(monkeypatch):
    monkeypatch.setattr(pagination, "ANCHOR_EVERY", 4)
    monkeypatch.setattr(pagination, "DEFERRED_JOIN_OFFSET", 2)


@pytest.mark.parametrize("ordering", list(PRODUCT_ORDERINGS))
@pytest.mark.parametrize("per_page", [1, 3, 4, 10])
def test_pages_match_plain_slicing(products, small_anchors, ordering, per_page):
    qs = Product.objects.filter(is_active=True).order_by(*PRODUCT_ORDERINGS[ordering])
    fast, plain = CachedCountPaginator(qs, per_page), Paginator(qs, per_page)
    assert fast.count == plain.count == 37
    assert fast.num_pages == plain.num_pages
    for number in plain.page_range:
        assert [p.pk for p in fast.page(number)] == [p.pk for p in plain.page(number)], number


def test_filtered_subset_and_empty_result(products, small_anchors):
    qs = Product.objects.filter(is_active=True, category__slug="b").order_by("-id")
    fast, plain = CachedCountPaginator(qs, 3), Paginator(qs, 3)
    assert [[p.pk for p in fast.page(n)] for n in plain.page_range] == [[p.pk for p in plain.page(n)] for n in plain.page_range]
    empty = CachedCountPaginator(Product.objects.filter(pk__in=[]), 5)
    assert (empty.count, list(empty.page(1))) == (0, [])
    with pytest.raises(EmptyPage):
        empty.page(2)


def test_count_and_anchors_are_cached(products, small_anchors):
    qs = Product.objects.filter(is_active=True).order_by("id")
    CachedCountPaginator(qs, 4).page(8)  # computes and caches count and anchors
    with CaptureQueriesContext(connection) as queries:
        page = CachedCountPaginator(qs, 4).page(8)
    assert len(page) == 4
    assert len(queries) == 1  # only the page itself: no COUNT, no anchor query
    sql = queries[0]["sql"]
    assert "OFFSET" not in sql.upper() and '"id" >=' in sql  # keyset jump from the anchor, offset 0


def test_deep_offsets_read_ids_first(products, small_anchors):
    qs = Product.objects.filter(is_active=True).select_related("category").order_by("name", "id")
    paginator = CachedCountPaginator(qs, 4)
    paginator.count
    with CaptureQueriesContext(connection) as queries:
        page = paginator.page(3)
    assert [p.pk for p in page] == [p.pk for p in Paginator(qs, 4).page(3)]
    assert [p.category.slug for p in page] == [p.category.slug for p in Paginator(qs, 4).page(3)]
    assert len(queries) == 2
    assert queries[0]["sql"].startswith('SELECT "catalog_product"."id" AS "pk" FROM') and "OFFSET 8" in queries[0]["sql"]


def test_far_pages_of_other_orderings_read_from_the_end(products, small_anchors):
    qs = Product.objects.filter(is_active=True).order_by("price", "id")
    paginator = CachedCountPaginator(qs, 4)
    paginator.count
    with CaptureQueriesContext(connection) as queries:
        last = paginator.page(paginator.num_pages)
    assert [p.pk for p in last] == [p.pk for p in Paginator(qs, 4).page(10)]
    assert "DESC" in queries[0]["sql"]


def test_get_page_clamps_bad_numbers(products):
    paginator = CachedCountPaginator(Product.objects.filter(is_active=True).order_by("id"), 10)
    assert paginator.get_page("abc").number == 1
    assert paginator.get_page(999).number == 4
    assert paginator.get_page(-3).number == 4


def test_page_numbers_are_ascii_digits(products):
    """int() reads '٢' (Arabic-Indic 2) as 2: a page number written so is not a number here."""
    from django.core.paginator import PageNotAnInteger

    paginator = CachedCountPaginator(Product.objects.filter(is_active=True).order_by("id"), 10)
    assert paginator.validate_number("2") == paginator.validate_number(2) == 2
    for bad in ("\u0662", "\u00b2", "+2", " 2", "2\n", "", None):
        with pytest.raises(PageNotAnInteger):
            paginator.validate_number(bad)
        assert paginator.get_page(bad).number == 1  # the storefront grid shows the first page
