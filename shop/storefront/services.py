"""Storefront changes: the session cart and placing orders; both record tracking events."""
from __future__ import annotations

import logging
from decimal import Decimal

from django.db import transaction

from catalog.models import Product
from shop.models import Order, OrderLine

from .selectors import CART_SESSION_KEY, cart_quantities

logger = logging.getLogger(__name__)

MAX_QUANTITY = 99


class CheckoutError(Exception):
    """The cart cannot be ordered as it is; ``errors`` are messages for the shopper."""

    def __init__(self, errors: list[str]):
        super().__init__("; ".join(errors))
        self.errors = errors


def _record(request, event_type: str, product: Product, source: str = "") -> None:
    """Record a tracking event if tracking provides ``event_record_for_request`` (built concurrently).

    Imported lazily so the storefront works before tracking exists; a tracking failure is logged and
    never breaks a cart change or a placed order.
    """
    try:
        from tracking import services as tracking_services
    except ImportError:
        return
    record = getattr(tracking_services, "event_record_for_request", None)
    if record is None:
        return
    try:
        record(request, event_type, product, source=source)
    except Exception:  # noqa: BLE001 - tracking must not break shopping
        logger.exception("tracking event %s for product %s failed", event_type, product.pk)


def product_view_record(request, product: Product, source: str = "") -> None:
    _record(request, "view", product, source=source)


def _cart_save(request, cart: dict[int, int]) -> None:
    request.session[CART_SESSION_KEY] = {str(pk): qty for pk, qty in cart.items()}


def cart_add(request, product: Product, quantity: int = 1) -> int:
    """Add ``quantity`` of an active product; returns the new quantity in the cart (capped at MAX_QUANTITY)."""
    if not product.is_active:
        raise ValueError("This product is no longer available.")
    if quantity <= 0:
        raise ValueError("Quantity must be at least 1.")
    cart = cart_quantities(request.session)
    cart[product.pk] = min(cart.get(product.pk, 0) + quantity, MAX_QUANTITY)
    _cart_save(request, cart)
    _record(request, "add_to_cart", product, source="cart")
    return cart[product.pk]


def cart_set_quantity(request, product: Product, quantity: int) -> None:
    if quantity <= 0:
        raise ValueError("Quantity must be at least 1 (use Remove to take an item out).")
    cart = cart_quantities(request.session)
    if product.pk not in cart:
        raise ValueError("This product is not in your cart.")
    cart[product.pk] = min(quantity, MAX_QUANTITY)
    _cart_save(request, cart)


def cart_remove(request, product: Product) -> bool:
    cart = cart_quantities(request.session)
    if cart.pop(product.pk, None) is None:
        return False
    _cart_save(request, cart)
    _record(request, "remove_from_cart", product, source="cart")
    return True


def order_place(request, *, name: str, email: str) -> Order:
    """Turn the session cart into an Order (prices captured now), empty the cart, record purchases.

    All or nothing: products are locked while checked, and any problem (empty cart, inactive product,
    a quantity <= 0, mixed currencies) raises CheckoutError with every message and changes nothing.
    """
    cart = cart_quantities(request.session)
    if not cart:
        raise CheckoutError(["Your cart is empty."])
    if not request.session.session_key:
        request.session.save()
    with transaction.atomic():
        products = Product.objects.select_for_update().in_bulk(list(cart))
        errors, lines = [], []
        for pk, quantity in cart.items():
            product = products.get(pk)
            if product is None or not product.is_active:
                label = product.name if product else f"Product {pk}"
                errors.append(f"{label} is no longer available; remove it from your cart.")
            elif quantity <= 0:
                errors.append(f"{product.name}: quantity must be at least 1.")
            else:
                lines.append((product, min(quantity, MAX_QUANTITY)))
        currencies = {product.currency for product, _ in lines}
        if len(currencies) > 1:
            errors.append("Your cart mixes currencies (" + ", ".join(sorted(currencies)) + "); order them separately.")
        if errors:
            raise CheckoutError(errors)
        order = Order.objects.create(
            session_key=request.session.session_key,
            name=name,
            email=email,
            currency=lines[0][0].currency,
            total=sum((p.price * q for p, q in lines), Decimal("0.00")),
        )
        OrderLine.objects.bulk_create(
            [OrderLine(order=order, product=p, product_name=p.name, unit_price=p.price, quantity=q) for p, q in lines]
        )
    _cart_save(request, {})
    for product, _ in lines:
        _record(request, "purchase", product, source="cart")
    return order
