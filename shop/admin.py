"""Admin for orders: lines inline, read-only (an order is a record of what was bought)."""
from django.contrib import admin

from .models import Order, OrderLine


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    extra = 0
    can_delete = False
    fields = ["product", "product_name", "unit_price", "quantity", "line_total"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description="Total")
    def line_total(self, obj):
        return obj.line_total


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ["id", "created", "name", "email", "status", "total", "currency"]
    list_filter = ["status", "created"]
    search_fields = ["=id", "name", "email", "session_key"]
    date_hierarchy = "created"
    readonly_fields = ["session_key", "created", "total", "currency"]
    inlines = [OrderLineInline]
