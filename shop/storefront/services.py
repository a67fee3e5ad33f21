"""Storefront changes: the browser's owner id, its database cart and placing orders; they record
tracking events. They take the browser as plain values (its session store, or tracking's Visitor
built by the views), never the request."""
from __future__ import annotations

import logging
import uuid
from decimal import Decimal

from django.contrib.sessions.backends.base import UpdateError
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.db import IntegrityError, transaction
from django.db.models import F, Value
from django.db.models.functions import Least

from catalog.models import Product
from shop.models import Cart, CartItem, Order, OrderLine
from tracking import services as tracking_services
from tracking.visitors import Visitor

from . import db, selectors
from .selectors import OWNER_SESSION_KEY

logger = logging.getLogger(__name__)

MAX_QUANTITY = Cart.MAX_QUANTITY


class CheckoutError(Exception):
    """The cart cannot be ordered as it is; ``errors`` are messages for the shopper."""

    def __init__(self, errors: list[str]):
        super().__init__("; ".join(errors))
        self.errors = errors


def _record(visitor: Visitor, event_type: str, product: Product, source: str = "") -> None:
    """Record a tracking event of the browser's visit; a tracking failure is logged and never breaks
    a cart change or a placed order."""
    try:
        tracking_services.event_record_for_visitor(visitor, event_type, product, source=source)
    except Exception:  # noqa: BLE001 - tracking must not break shopping
        logger.exception("tracking event %s for product %s failed", event_type, product.pk)


def _visit(visitor: Visitor):
    try:
        return tracking_services.visit_for_visitor(visitor)
    except Exception:  # noqa: BLE001 - an order without its visit is still an order
        logger.exception("no visit for the order")
        return None


def product_view_record(visitor: Visitor, product: Product, source: str = "") -> None:
    _record(visitor, "view", product, source=source)


def visit_uuid_for_visitor(visitor: Visitor) -> uuid.UUID | None:
    """The uuid of the browser's visit (started now when it has none), for the product page's
    recommendations; None for a client that has not shown it is a browser yet (tracking.gate) or
    when tracking fails: the page then recommends from the product alone."""
    try:
        return tracking_services.visit_for_visitor(visitor).uuid
    except Exception:  # noqa: BLE001 - recommendations must not break the product page
        return None


# --- The browser's owner id ------------------------------------------------------------------

def session_owner_ensure(session) -> uuid.UUID:
    """The browser's owner id, given to its session now if it has none yet.

    A session gets its owner id when it is first saved (SessionOwnerMiddleware), before any other
    request can hold it. Only a session saved without one (made before owner ids existed) is given
    one later, by whichever request comes first; its parallel requests must all take the same id
    (the session blob is written whole, last writer wins), so the id is chosen under a lock on the
    session and read back from the session's database row, not from a cache in front of it.
    """
    owner = selectors.session_owner(session)  # loads the session: an unknown key is dropped here
    if owner is not None:
        return owner
    key = session.session_key
    if key is None:  # a session not saved yet: no other request can hold it
        owner = uuid.uuid4()
        session[OWNER_SESSION_KEY] = str(owner)
        return owner
    with transaction.atomic():
        db.session_lock(key)
        store = DatabaseSessionStore if isinstance(session, DatabaseSessionStore) else type(session)
        owner = selectors.session_owner(store(session_key=key))
        if owner is not None:  # a parallel request of this session chose it
            session[OWNER_SESSION_KEY] = str(owner)
            return owner
        owner = uuid.uuid4()
        session[OWNER_SESSION_KEY] = str(owner)
        try:
            session.save()  # stored before the lock is released: the requests waiting for it read it
        except UpdateError:
            pass  # the session was deleted meanwhile; the session middleware answers that request
    return owner


# --- The cart ----------------------------------------------------------------------------------

def _cart_for_update(owner: uuid.UUID, *, create: bool) -> Cart | None:
    """The owner's open cart, its row locked until the transaction ends. Every cart change and the
    checkout take this lock, so changes of one cart run one at a time and none lands in an ordered
    cart (a request that waited for a checkout finds the cart ordered and opens a new one)."""
    while True:
        cart = Cart.objects.select_for_update().filter(owner=owner, status=Cart.Status.OPEN).first()
        if cart is not None or not create:
            return cart
        try:
            with transaction.atomic():
                return Cart.objects.create(owner=owner)  # locked by the insert until commit
        except IntegrityError:
            continue  # a parallel request opened it first (cart_one_open_per_owner): take theirs


def cart_add(visitor: Visitor, product: Product, quantity: int = 1) -> int:
    """Add ``quantity`` of an active product; returns the new quantity in the cart (capped at MAX_QUANTITY)."""
    if not product.is_active:
        raise ValueError("This product is no longer available.")
    if quantity <= 0:
        raise ValueError("Quantity must be at least 1.")
    owner = session_owner_ensure(visitor.session)
    with transaction.atomic():
        cart = _cart_for_update(owner, create=True)
        item = CartItem.objects.filter(cart=cart, product=product).first()
        if item is None:
            new_quantity = min(quantity, MAX_QUANTITY)
            CartItem.objects.create(cart=cart, product=product, quantity=new_quantity)
        else:
            new_quantity = min(item.quantity + quantity, MAX_QUANTITY)
            CartItem.objects.filter(pk=item.pk).update(quantity=Least(F("quantity") + quantity, Value(MAX_QUANTITY)))
        cart.save(update_fields=["updated"])
    _record(visitor, "add_to_cart", product, source="cart")
    return new_quantity


def cart_set_quantity(session, product: Product, quantity: int) -> None:
    if quantity <= 0:
        raise ValueError("Quantity must be at least 1 (use Remove to take an item out).")
    owner = selectors.session_owner(session)
    with transaction.atomic():
        cart = _cart_for_update(owner, create=False) if owner else None
        if cart is None or not CartItem.objects.filter(cart=cart, product=product).update(
                quantity=min(quantity, MAX_QUANTITY)):
            raise ValueError("This product is not in your cart.")
        cart.save(update_fields=["updated"])


def cart_remove(visitor: Visitor, product: Product) -> bool:
    owner = selectors.session_owner(visitor.session)
    with transaction.atomic():
        cart = _cart_for_update(owner, create=False) if owner else None
        if cart is None or not CartItem.objects.filter(cart=cart, product=product).delete()[0]:
            return False
        cart.save(update_fields=["updated"])
    _record(visitor, "remove_from_cart", product, source="cart")
    return True


# --- Checkout ----------------------------------------------------------------------------------

def order_place(visitor: Visitor, *, name: str, email: str) -> tuple[Order, bool]:
    """Turn the browser's open cart into an Order (prices captured now) and record the purchases;
    returns the order and whether this call placed it.

    One cart gives at most one order: the cart row is locked, the order names its cart (one-to-one)
    and the cart is marked ordered in the same transaction. A repeat of a checkout that already
    placed the order (a double click, parallel tabs, a retry after a timeout) finds no open cart
    and gets that order back, placing nothing.

    All or nothing: products are locked while checked, and any problem (empty cart, inactive product,
    mixed currencies) raises CheckoutError with every message and changes nothing.
    """
    owner = selectors.session_owner(visitor.session)
    if owner is None:
        raise CheckoutError(["Your cart is empty."])
    visit = _visit(visitor)
    with transaction.atomic():
        cart = _cart_for_update(owner, create=False)
        if cart is None:
            previous = Order.objects.filter(owner=owner, cart__isnull=False).order_by("-id").first()
            if previous is not None:
                return previous, False
            raise CheckoutError(["Your cart is empty."])
        items = list(cart.items.order_by("id"))
        if not items:
            raise CheckoutError(["Your cart is empty."])
        products = Product.objects.select_for_update().in_bulk([item.product_id for item in items])
        errors, lines = [], []
        for item in items:
            product = products.get(item.product_id)
            if product is None or not product.is_active:
                label = product.name if product else f"Product {item.product_id}"
                errors.append(f"{label} is no longer available; remove it from your cart.")
            else:
                lines.append((product, item.quantity))
        currencies = {product.currency for product, _ in lines}
        if len(currencies) > 1:
            errors.append("Your cart mixes currencies (" + ", ".join(sorted(currencies)) + "); order them separately.")
        if errors:
            raise CheckoutError(errors)
        order = Order.objects.create(
            cart=cart,
            owner=owner,
            visit=visit,
            name=name,
            email=email,
            currency=lines[0][0].currency,
            total=sum((p.price * q for p, q in lines), Decimal("0.00")),
        )
        OrderLine.objects.bulk_create(
            [OrderLine(order=order, product=p, product_name=p.name, unit_price=p.price, quantity=q) for p, q in lines]
        )
        cart.status = Cart.Status.ORDERED
        cart.save(update_fields=["status", "updated"])
    for product, _ in lines:
        _record(visitor, "purchase", product, source="cart")
    return order, True
