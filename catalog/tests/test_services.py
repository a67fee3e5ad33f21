from django.core.cache import cache

import pytest
from hypothesis import given
from hypothesis import strategies as st

from catalog import cache as catalog_cache
from catalog.models import Category, Product
from catalog.services import category_ensure_path, product_stubs_ensure, products_set_active
from catalog.tests.factories import ProductFactory

pytestmark = pytest.mark.django_db


def test_category_ensure_path_builds_the_chain_once():
    leaf = category_ensure_path("electronics.audio.headphone")
    again = category_ensure_path("electronics.audio.headphone")
    assert leaf.pk == again.pk
    assert [c.slug for c in Category.objects.order_by("id")] == [
        "electronics", "electronics-audio", "electronics-audio-headphone"
    ]
    assert (leaf.name, leaf.parent.name, leaf.parent.parent.name) == ("Headphone", "Audio", "Electronics")
    assert category_ensure_path("") is None


def test_product_stubs_ensure_creates_missing_and_invalidates_the_cache():
    existing = ProductFactory(external_id="10")
    version = catalog_cache.version()
    result = product_stubs_ensure(["10", "11", "11", "12"], categories={"12": "kids.toys"})
    assert result["10"] == existing.pk
    assert sorted(result) == ["10", "11", "12"]
    stub = Product.objects.get(external_id="12")
    assert (stub.name, stub.slug, stub.category.slug) == ("Item 12", "item-12", "kids-toys")
    assert catalog_cache.version() != version
    assert product_stubs_ensure(["10", "11"]) == {"10": existing.pk, "11": result["11"]}


def test_products_set_active_counts_changes_and_bumps_version():
    a, b = ProductFactory(), ProductFactory(is_active=False)
    version = catalog_cache.version()
    assert products_set_active([a.pk, b.pk], False) == 1
    assert catalog_cache.version() != version
    version = catalog_cache.version()
    assert products_set_active([a.pk, b.pk], False) == 0
    assert catalog_cache.version() == version
    assert list(Product.objects.filter(is_active=True)) == []


def test_version_survives_a_flushed_cache():
    first = catalog_cache.version()
    assert catalog_cache.version() == first
    cache.clear()
    catalog_cache.forget()
    assert catalog_cache.version() == first  # the database holds it; the flushed cache has nothing under it


def test_version_memo_sees_other_processes_bumps_after_a_short_time(monkeypatch):
    from catalog.models import CatalogVersion

    first = catalog_cache.version()
    CatalogVersion.objects.update(token="from-another-process")
    assert catalog_cache.version() == first  # memoised for VERSION_MEMO_SECONDS
    monkeypatch.setattr(catalog_cache, "VERSION_MEMO_SECONDS", 0)
    assert catalog_cache.version() == "from-another-process"


@given(st.text(max_size=40) | st.from_regex(r"[A-Za-z0-9-]{1,20}", fullmatch=True))
def test_stub_slug_fast_path_equals_slugify(ext):
    """Plain ids skip slugify's Unicode pass; the slug must be exactly what slugify makes."""
    from django.utils.text import slugify

    from catalog.services import _stub_slug

    assert _stub_slug(ext) == (slugify(f"item-{ext}")[:255] or "item")
