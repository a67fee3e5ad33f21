"""Orders placed through the storefront: one Order per checkout, its lines with the price paid."""
from decimal import Decimal

from django.db import models


class Order(models.Model):
    STATUS_PLACED = "placed"
    STATUS_CHOICES = [(STATUS_PLACED, "Placed")]

    # Orders belong to the browser session that placed them (the shop has no customer accounts).
    session_key = models.CharField(max_length=40, db_index=True)
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
