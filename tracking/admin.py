"""Admin for visits and events: read-only (the event log is append-only), plus a popularity refresh."""
from django.contrib import admin, messages

from . import services
from .models import Event, ProductPopularity, Visit


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Visit)
class VisitAdmin(ReadOnlyAdmin):
    list_display = ("uuid", "started", "last_seen", "user", "is_staff", "source")
    list_filter = ("source", "is_staff")
    search_fields = ("uuid",)
    raw_id_fields = ("user",)
    show_full_result_count = False


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ("timestamp", "event_type", "product_id", "visit_id", "source", "position", "model_version", "is_staff",
                    "trusted")
    list_filter = ("event_type", "source", "is_staff", "trusted")
    raw_id_fields = ("visit", "product", "user")
    # A count(*) over tens of millions of rows on every changelist page is too slow.
    show_full_result_count = False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ProductPopularity)
class ProductPopularityAdmin(ReadOnlyAdmin):
    list_display = ("product", "window_days", "views", "purchases", "score", "trend", "updated")
    list_filter = ("window_days",)
    raw_id_fields = ("product",)
    ordering = ("window_days", "-score")
    actions = ["refresh"]

    @admin.action(description="Recompute popularity now")
    def refresh(self, request, queryset):
        written = services.popularity_refresh()
        self.message_user(request, f"Popularity recomputed: {written} rows.", messages.SUCCESS)
