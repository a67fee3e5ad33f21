"""Products API filters (django-filter): category by id or slug with its descendants, name search, ordering."""
import django_filters
from django import forms
from django_filters.fields import ChoiceField
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


# Django's form fields refuse NUL (PostgreSQL text cannot hold it) with a 400: the schema says so.
NO_NUL = "^[^\\x00]*$"


@extend_schema_field({"type": "string", "pattern": NO_NUL})  # an id or a slug, not the model's integer pk
class CategoryFilter(django_filters.Filter):
    field_class = CategoryField


@extend_schema_field({"type": "string", "maxLength": 100, "pattern": NO_NUL})
class SearchFilter(django_filters.CharFilter):
    pass


class GivenChoiceField(ChoiceField):
    """A choice that, when given, is one of the choices: django-filter reads "?ordering=" as not
    given (the default order), which the schema's enum does not allow."""

    def clean(self, value):
        if value == "":
            raise forms.ValidationError(self.error_messages["invalid_choice"], code="invalid_choice",
                                        params={"value": "''"})
        return super().clean(value)


class GivenChoiceFilter(django_filters.ChoiceFilter):
    field_class = GivenChoiceField


class ProductFilter(django_filters.FilterSet):
    category = CategoryFilter(
        method="filter_category",
        help_text="Category id or slug; products of its subcategories are included. Unknown values give 400.",
    )
    search = SearchFilter(
        method="filter_search", max_length=100, help_text="Case-insensitive substring of the product name."
    )
    ordering = GivenChoiceFilter(
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
