"""Catalogue admin for merchandisers: search, filters, inline price/active edits; every change
invalidates the catalogue caches through the services (explicit calls, no signals)."""
from django.contrib import admin, messages

from . import services
from .models import Category, Product
from .pagination import CachedCountPaginator


class AdminPaginator(CachedCountPaginator):
    """The cached count and keyset jumps, but a page's object_list stays a queryset (in the page's
    order): the changelist's list_editable formset needs one (``.ordered``, further filtering)."""

    def _slice(self, bottom: int, top: int):
        rows = super()._slice(bottom, top)
        return self.object_list.filter(pk__in=[row.pk for row in rows])


class CatalogueChangesAdmin(admin.ModelAdmin):
    """Every save or delete from the admin invalidates the catalogue caches."""

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        services.catalog_cache_invalidate()

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        services.catalog_cache_invalidate()

    def delete_queryset(self, request, queryset):
        super().delete_queryset(request, queryset)
        services.catalog_cache_invalidate()


@admin.register(Category)
class CategoryAdmin(CatalogueChangesAdmin):
    list_display = ["name", "slug", "parent"]
    search_fields = ["name", "slug"]
    list_filter = [("parent", admin.EmptyFieldListFilter)]
    prepopulated_fields = {"slug": ["name"]}
    autocomplete_fields = ["parent"]


@admin.register(Product)
class ProductAdmin(CatalogueChangesAdmin):
    list_display = ["id", "name", "external_id", "category", "brand", "price", "currency", "is_active", "updated"]
    list_display_links = ["id", "name"]
    list_editable = ["price", "is_active"]
    list_filter = ["is_active", "currency", ("category", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["name", "=external_id", "brand"]
    list_select_related = ["category"]
    autocomplete_fields = ["category"]
    readonly_fields = ["created", "updated"]
    list_per_page = 50
    # A million products: the cached count instead of COUNT(*) per changelist page.
    paginator = AdminPaginator
    show_full_result_count = False
    actions = ["activate", "deactivate"]


    @admin.action(description="Activate selected products")
    def activate(self, request, queryset):
        changed = services.products_set_active(queryset.values_list("pk", flat=True), True)
        self.message_user(request, f"{changed} product(s) activated.", messages.SUCCESS)

    @admin.action(description="Deactivate selected products")
    def deactivate(self, request, queryset):
        changed = services.products_set_active(queryset.values_list("pk", flat=True), False)
        self.message_user(request, f"{changed} product(s) deactivated.", messages.SUCCESS)
