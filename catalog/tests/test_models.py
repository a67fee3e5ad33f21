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


def test_currency_is_validated_by_the_model_and_the_admin(admin_client):
    """The admin (a ModelForm, so the model field's validators) refused nothing: '<B>' was stored."""
    from django.core.exceptions import ValidationError

    product = ProductFactory(external_id="c1", name="Lamp", slug="lamp")
    product.currency = "<B>"
    with pytest.raises(ValidationError) as error:
        product.full_clean()
    assert error.value.message_dict == {
        "currency": ["'<B>' is not an ISO 4217 currency code (three capital letters, such as EUR or USD)."]
    }
    form = {"external_id": "c1", "name": "Lamp", "slug": "lamp", "description": "", "price": "5.00", "brand": "",
            "is_active": "on"}
    response = admin_client.post(f"/admin/catalog/product/{product.pk}/change/", {**form, "currency": "<B>"})
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["currency"] == [
        "'<B>' is not an ISO 4217 currency code (three capital letters, such as EUR or USD)."
    ]
    assert admin_client.post(f"/admin/catalog/product/{product.pk}/change/", {**form, "currency": "USD"}).status_code == 302
    product.refresh_from_db()
    assert product.currency == "USD"
