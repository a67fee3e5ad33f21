"""Storefront forms: they parse and validate query strings and posts (no hand parsing in views)."""
from django import forms

from catalog.selectors import PRODUCT_ORDERINGS
from shop.models import Cart
from shop.validators import AsciiIntegerFormField

PAGE_SIZES = (12, 24, 48, 96)
DEFAULT_PAGE_SIZE = 24
SORT_LABELS = {
    "id": "Oldest first", "-id": "Newest first", "price": "Price: low to high",
    "-price": "Price: high to low", "name": "Name: A to Z", "-name": "Name: Z to A",
}


class ProductFilterForm(forms.Form):
    """The grid's query string; invalid values fall back to defaults (a bad link still shows products)."""

    q = forms.CharField(required=False, max_length=100, label="Search")
    category = forms.CharField(required=False, max_length=255)
    size = forms.TypedChoiceField(
        required=False, coerce=int, choices=[(n, n) for n in PAGE_SIZES], empty_value=DEFAULT_PAGE_SIZE
    )
    sort = forms.ChoiceField(required=False, choices=[(k, SORT_LABELS[k]) for k in PRODUCT_ORDERINGS])
    page = forms.CharField(required=False, max_length=12)

    def values(self) -> dict:
        self.is_valid()
        data = self.cleaned_data
        return {
            "q": data.get("q") or "",
            "category": data.get("category") or "",
            "size": data.get("size") or DEFAULT_PAGE_SIZE,
            "sort": data.get("sort") or "id",
            "page": data.get("page") or 1,
        }


class QuantityForm(forms.Form):
    # ASCII digits only: forms.IntegerField would take "٣" (Arabic-Indic three) as 3.
    quantity = AsciiIntegerFormField(
        label="Quantity",
        initial=1,
        max_value=Cart.MAX_QUANTITY,
        error_messages={"required": "Enter a quantity.", "invalid": "Enter a whole number."},
    )

    def clean_quantity(self):
        quantity = self.cleaned_data["quantity"]
        if quantity <= 0:
            raise forms.ValidationError("Quantity must be at least 1 (use Remove to take an item out).")
        return quantity


class CheckoutForm(forms.Form):
    name = forms.CharField(max_length=200, label="Full name")
    email = forms.EmailField(label="Email")
