"""Products API filters (django-filter): category by id or slug with its descendants, name search, ordering."""
import django_filters
from django import forms
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from catalog import selectors
from catalog.models import Product


class CategoryField(forms.CharField):
    """A category id or slug, resolved to the category node; unknown values are a validation error (400)."""

    def clean(self, value):
        value = super().clean(value)
        if not value:
            return None
        node = selectors.category_resolve(value)
        if node is None:
            # the value goes in as a parameter: a '%' typed by the client must not be read as a
            # format directive when the message is rendered (that was a 500)
            raise forms.ValidationError("Unknown category %(value)s.", code="unknown", params={"value": repr(value)})
        return node


@extend_schema_field(OpenApiTypes.STR)  # an id or a slug, not the model's integer pk
class CategoryFilter(django_filters.Filter):
    field_class = CategoryField


class ProductFilter(django_filters.FilterSet):
    category = CategoryFilter(
        method="filter_category",
        help_text="Category id or slug; products of its subcategories are included. Unknown values give 400.",
    )
    search = django_filters.CharFilter(
        method="filter_search", max_length=100, help_text="Case-insensitive substring of the product name."
    )
    ordering = django_filters.ChoiceFilter(
        method="filter_ordering",
        choices=[(key, key) for key in selectors.PRODUCT_ORDERINGS],
        empty_label=None,
        help_text="Sort order (ties broken by id). Default: id.",
    )

    class Meta:
        model = Product
        fields = ["category", "search", "ordering"]

    def filter_category(self, queryset, name, value):
        ids = selectors.category_descendant_ids(value.id)
        return queryset.filter(category_id=ids[0]) if len(ids) == 1 else queryset.filter(category_id__in=ids)

    def filter_search(self, queryset, name, value):
        value = value.strip()
        return queryset.filter(name__icontains=value) if value else queryset

    def filter_ordering(self, queryset, name, value):
        return queryset.order_by(*selectors.PRODUCT_ORDERINGS[value])
