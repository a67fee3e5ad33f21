"""The storefront's records: carts (one open per browser, kept in the database) and orders, one per
checked-out cart, with their lines at the price paid."""
import uuid
from decimal import Decimal

from django.db import models


class Cart(models.Model):
    """A browser's cart. ``owner`` is the random id the browser's session holds (never a session key):
    a browser has at most one open cart; checkout turns it into an order and marks it ordered."""

    MAX_QUANTITY = 99

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ORDERED = "ordered", "Ordered"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.UUIDField(editable=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created"]
        constraints = [
            # Parallel first adds of one browser all land in the same cart (the losers' inserts fail
            # and they take the winner's), and a stale session can never reopen an ordered cart.
            models.UniqueConstraint(fields=["owner"], condition=models.Q(status="open"),
                                    name="cart_one_open_per_owner"),
        ]

    def __str__(self):
        return f"Cart {str(self.id)[:8]} ({self.get_status_display().lower()})"


class CartItem(models.Model):
    cart = models.ForeignKey(Cart, on_delete=models.CASCADE, related_name="items")
    # PROTECT, like order lines: deleting a product that sits in a shopper's cart is refused (the
    # admin lists the carts); a product leaves the shop by being deactivated.
    product = models.ForeignKey("catalog.Product", on_delete=models.PROTECT, related_name="+")
    quantity = models.PositiveIntegerField()

    class Meta:
        ordering = ["id"]  # adding order
        constraints = [
            models.UniqueConstraint(fields=["cart", "product"], name="cartitem_one_line_per_product"),
            models.CheckConstraint(
                condition=models.Q(quantity__gte=1, quantity__lte=Cart.MAX_QUANTITY), name="cartitem_quantity_range"
            ),
        ]

    def __str__(self):
        return f"{self.quantity} x product {self.product_id}"


class Order(models.Model):
    STATUS_PLACED = "placed"
    STATUS_CHOICES = [(STATUS_PLACED, "Placed")]

    # At most one order per cart, whatever the concurrency: the database refuses a second one.
    # Null only for orders placed before carts were kept in the database.
    cart = models.OneToOneField(Cart, null=True, blank=True, on_delete=models.PROTECT, related_name="order",
                                editable=False)
    # "This browser's orders": the owner id from the session that placed it. Not a secret (the
    # server reads a browser's owner only from its session), unlike the session key it replaces.
    owner = models.UUIDField(null=True, blank=True, db_index=True, editable=False)
    visit = models.ForeignKey("tracking.Visit", null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="orders", editable=False)
    name = models.CharField(max_length=200)
    email = models.EmailField()
    status = models.CharField(max_length=20, choices=STATUS_CHOICES, default=STATUS_PLACED)
    currency = models.CharField(max_length=3, default="EUR")
    total = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self):
        return f"Order {self.pk}"


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    # PROTECT: an ordered product is deactivated, never deleted, so orders keep their lines.
    product = models.ForeignKey("catalog.Product", on_delete=models.PROTECT, related_name="order_lines")
    product_name = models.CharField(max_length=255)  # as shown when ordered
    unit_price = models.DecimalField(max_digits=12, decimal_places=2)  # captured at order time
    quantity = models.PositiveIntegerField()

    class Meta:
        ordering = ["id"]
        constraints = [models.CheckConstraint(condition=models.Q(quantity__gt=0), name="orderline_quantity_positive")]

    def __str__(self):
        return f"{self.quantity} x {self.product_name}"

    @property
    def line_total(self) -> Decimal:
        return self.unit_price * self.quantity


from .login_attempts import LoginAttempt  # noqa: E402,F401 - the admin sign-in lockout's counters
