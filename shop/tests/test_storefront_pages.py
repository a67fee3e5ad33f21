import re
from decimal import Decimal

import pytest

from catalog import pagination
from catalog.tests.factories import CategoryFactory, ProductFactory
from catalog.tests.fixtures import clean_cache, tracked  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalogue():
    shoes = CategoryFactory(slug="apparel-shoes", name="Shoes")
    lamps = CategoryFactory(slug="home-lamps", name="Lamps")
    products = [
        ProductFactory(name=f"{'Runner' if i % 2 == 0 else 'Lamp'} {i:02d}", category=shoes if i % 2 == 0 else lamps,
                       price=Decimal("10.00") + i, brand="acme")
        for i in range(30)
    ]
    return {"shoes": shoes, "lamps": lamps, "products": products}


def card_ids(response):
    return [int(x) for x in re.findall(r'<article class="product-card" data-product="(\d+)" data-source="grid"', response.content.decode())]


def test_index_first_page_cards_follow_the_tracking_contract(client, catalogue):
    response = client.get("/")
    html = response.content.decode()
    assert response.status_code == 200
    first = catalogue["products"][0]
    assert card_ids(response) == [p.pk for p in catalogue["products"][:24]]
    assert (f'<article class="product-card" data-product="{first.pk}" data-source="grid" data-position="0" '
            'data-model-version="">') in html
    assert f'<a class="product-link" href="/products/{first.pk}/?src=grid">' in html
    assert f'alt="{first.name}"' in html
    assert "30 products · page 1 of 2" in html
    assert 'href="?page=2"' in html and 'rel="prev"' not in html
    assert '<script src="/static/shop/tracking.js" defer></script>' in html
    assert re.search(r'window\.SHOP = \{visitId: "[^"]*", eventsUrl: "[^"]*", csrfToken: "[^"]+"\}', html)


def test_index_page_size_category_search_and_sort(client, catalogue):
    products = catalogue["products"]
    page2 = client.get("/?size=12&page=2")
    assert card_ids(page2) == [p.pk for p in products[12:24]]
    assert 'href="?size=12&amp;page=1"' in page2.content.decode()
    shoes = client.get("/?category=apparel-shoes")
    assert card_ids(shoes) == [p.pk for p in products[0::2]]
    by_id = client.get(f"/?category={catalogue['lamps'].pk}&q=lamp 0&sort=-price")
    assert card_ids(by_id) == [p.pk for p in reversed(products[1:10:2])]
    assert client.get("/?q=nothing-like-this").content.decode().count('class="product-card"') == 0


def test_index_bad_input_is_clamped_or_404(client, catalogue):
    assert card_ids(client.get("/?page=999")) == [p.pk for p in catalogue["products"][24:]]
    assert card_ids(client.get("/?page=abc&size=7&sort=colour")) == [p.pk for p in catalogue["products"][:24]]
    assert client.get("/?category=unknown").status_code == 404


def test_index_deep_page_through_anchors(client, catalogue, monkeypatch):
    monkeypatch.setattr(pagination, "ANCHOR_EVERY", 12)
    assert card_ids(client.get("/?size=12&page=3")) == [p.pk for p in catalogue["products"][24:]]


def test_product_page_sections_and_view_event(client, catalogue, tracked):
    product = catalogue["products"][4]
    response = client.get(f"/products/{product.pk}/?src=grid")
    html = response.content.decode()
    assert response.status_code == 200
    assert '<section id="recommended-for-you"' in html and '<section id="similar-items"' in html
    recommended = html.split('id="recommended-for-you"')[1].split("</section>")[0]
    # No popularity data yet: the newest other products of the category.
    shown = [int(x) for x in re.findall(r'data-product="(\d+)" data-source="recommended"', recommended)]
    assert shown == [p.pk for p in reversed(catalogue["products"][0::2]) if p.pk != product.pk][:8]
    assert f'href="/products/{shown[0]}/?src=recommended"' in recommended
    assert 'data-source="similar" data-position="0"' in html
    assert 'name="csrfmiddlewaretoken"' in html and "Add to cart" in html
    assert tracked == [("view", product.pk, "grid")]
    client.get(f"/products/{product.pk}/")
    assert tracked[-1] == ("view", product.pk, "")


def test_recommended_for_you_reads_only(catalogue):
    """The widget's selector starts no visit (it did, through tracking's visit_for_request): the
    product page's view asks the storefront's service for the visit first. Without one, the product
    itself is the session."""
    from shop.storefront.selectors import recommended_for_you
    from tracking.models import Visit

    product = catalogue["products"][4]
    shown = recommended_for_you(None, product)
    assert [p.pk for p in shown] == [p.pk for p in reversed(catalogue["products"][0::2]) if p.pk != product.pk][:8]
    assert not Visit.objects.exists()


def test_inactive_product_page_has_no_add_to_cart(client, catalogue):
    product = catalogue["products"][0]
    product.is_active = False
    product.save()
    html = client.get(f"/products/{product.pk}/").content.decode()
    assert "This product is no longer available." in html and "Add to cart" not in html
    assert client.get("/products/999999/").status_code == 404


def test_widgets_survive_a_broken_popularity_source(client, catalogue, monkeypatch, caplog):
    """The product page's widgets fall back to popular products, which come from the precomputed
    popular pools (recommendations.clusters.services.popular_pool, registered as
    recommendations.selectors' popular source): when that source breaks, the page still shows
    both widgets, filled with the newest products of the category."""
    from recommendations import caches
    from recommendations.clusters import services as cluster_services

    caches.reset()  # no pool memoised by an earlier test
    calls = []

    def popular_pool(*args, **kwargs):
        calls.append(args)
        raise TypeError("popular_pool() got an unexpected keyword argument")  # a source that changed under us

    monkeypatch.setattr(cluster_services, "popular_pool", popular_pool)
    products = catalogue["products"]
    product = products[4]
    response = client.get(f"/products/{product.pk}/")
    assert response.status_code == 200
    assert calls, "the product page never reached the popularity source this test breaks"
    assert "popular pools unavailable" in caplog.text
    html = response.content.decode()
    newest_of_the_category = [p.pk for p in reversed(products[0::2]) if p.pk != product.pk][:8]
    for section, source in (("recommended-for-you", "recommended"), ("similar-items", "similar")):
        widget = html.split(f'<section id="{section}"')[1].split("</section>")[0]
        shown = [int(x) for x in re.findall(rf'data-product="(\d+)" data-source="{source}"', widget)]
        assert shown == newest_of_the_category, section
