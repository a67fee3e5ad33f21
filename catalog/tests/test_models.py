from decimal import Decimal

import pytest
from django.db import IntegrityError, connection

from catalog.models import Product
from catalog.tests.factories import CategoryFactory, ProductFactory

pytestmark = pytest.mark.django_db


def test_product_defaults_and_str():
    product = Product.objects.create(external_id="X1", name="Lamp", slug="lamp")
    product.refresh_from_db()
    assert (str(product), product.price, product.currency, product.is_active, product.category) == (
        "Lamp", Decimal("0.00"), "EUR", True, None
    )


def test_external_id_is_unique():
    ProductFactory(external_id="dup")
    with pytest.raises(IntegrityError):
        ProductFactory(external_id="dup")


def test_category_delete_keeps_products():
    product = ProductFactory(category=CategoryFactory(slug="c"))
    product.category.delete()
    product.refresh_from_db()
    assert product.category_id is None


def test_list_indexes_exist():
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, Product._meta.db_table)
    names = set(constraints)
    assert {"product_active_id", "product_cat_active_id", "product_active_price_id", "product_active_name_id"} <= names
    if connection.vendor == "postgresql":
        assert "product_name_upper_trgm" in names
