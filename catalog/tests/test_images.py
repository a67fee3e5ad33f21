import pytest

from catalog.images import category_colour, product_placeholder_svg
from catalog.tests.factories import CategoryFactory, ProductFactory


def test_svg_escapes_and_wraps_the_name():
    svg = product_placeholder_svg('Ace <b>"Runner"</b> & trail shoe for long days', "Shoes", "apparel-shoes")
    assert svg.startswith('<svg xmlns="http://www.w3.org/2000/svg"')
    assert "<b>" not in svg and "&lt;b&gt;" in svg and "&amp;" in svg
    assert svg.count("<text") == 2 + 3  # initial, category, three name lines
    assert "<title>Ace &lt;b&gt;&quot;Runner&quot;&lt;/b&gt; &amp; trail shoe for long days</title>" in svg


def test_colour_is_per_category():
    assert category_colour("apparel-shoes") == category_colour("apparel-shoes")
    assert category_colour("apparel-shoes") != category_colour("electronics")
    assert category_colour("electronics")[0] in product_placeholder_svg("X", "E", "electronics")


@pytest.mark.django_db
def test_image_view_serves_cacheable_svg(client):
    product = ProductFactory(name="Trail Runner", category=CategoryFactory(slug="apparel-shoes", name="Shoes"))
    response = client.get(f"/products/{product.pk}/image.svg")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml; charset=utf-8"
    assert response["Cache-Control"] == "public, max-age=86400"
    body = response.content.decode()
    assert "Trail Runner" in body and "Shoes" in body and category_colour("apparel-shoes")[0] in body
    assert client.get("/products/999999/image.svg").status_code == 404
