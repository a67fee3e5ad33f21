"""Admin for orders and carts, read-only (an order is a record of what was bought, a cart is the
shopper's). Nothing shown here is a credential: a browser is named by its owner id, which grants
nothing (the server reads it only from the browser's own session), and a visit by its number."""
from django.contrib import admin

from .models import Cart, CartItem, Order, OrderLine


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
    search_fields = ["=id", "name", "email"]
    date_hierarchy = "created"
    # The visit as its number: its uuid is the id the shopper's page sends events with.
    fields = ["name", "email", "status", "total", "currency", "created", "cart", "owner", "visit_number"]
    readonly_fields = ["created", "total", "currency", "cart", "owner", "visit_number"]
    inlines = [OrderLineInline]

    @admin.display(description="Visit")
    def visit_number(self, obj):
        return obj.visit_id if obj.visit_id is not None else "-"


class CartItemInline(admin.TabularInline):
    model = CartItem
    extra = 0
    can_delete = False
    fields = ["product", "quantity"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Cart)
class CartAdmin(admin.ModelAdmin):
    list_display = ["id", "status", "created", "updated", "owner"]
    list_filter = ["status", "created"]
    search_fields = ["=id", "=owner"]
    date_hierarchy = "created"
    fields = ["id", "owner", "status", "created", "updated"]
    readonly_fields = fields
    inlines = [CartItemInline]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
