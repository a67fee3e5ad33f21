"""Storefront reads: the browser's cart and orders, and the product page's widgets."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal

from catalog.models import Product
from recommendations import ranking
from shop.models import Cart, CartItem, Order

# The session holds only this random id of the browser (its "owner" id): the cart and the orders
# live in the database under it. It never changes for the life of a session (login keeps it, logout
# starts a new session), so no request ever needs to rewrite it and a stale copy of a session is
# never wrong about it.
OWNER_SESSION_KEY = "shop_owner"


def session_owner(session) -> uuid.UUID | None:
    """The browser's owner id from its session; None before it has one."""
    try:
        value = session.get(OWNER_SESSION_KEY)
    except AttributeError:  # no session (a request outside the session middleware)
        return None
    if not value:
        return None
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


@dataclass
class CartLine:
    product: Product
    quantity: int

    @property
    def line_total(self) -> Decimal:
        return self.product.price * self.quantity


def cart_lines(session) -> list[CartLine]:
    """The open cart's lines with their products (inactive ones included: checkout reports them),
    in adding order; one query."""
    owner = session_owner(session)
    if owner is None:
        return []
    items = (CartItem.objects.filter(cart__owner=owner, cart__status=Cart.Status.OPEN)
             .select_related("product__category").order_by("id"))
    return [CartLine(item.product, item.quantity) for item in items]


def cart_count(session) -> int:
    """How many different products the open cart holds (the header's badge)."""
    owner = session_owner(session)
    if owner is None:
        return 0
    return CartItem.objects.filter(cart__owner=owner, cart__status=Cart.Status.OPEN).count()


def cart_total(lines: list[CartLine]) -> Decimal:
    return sum((line.line_total for line in lines), Decimal("0.00"))


def cart_totals(lines: list[CartLine]) -> list[tuple[Decimal, str]]:
    """(amount, currency) per currency in the cart, in adding order: one pair normally; several
    when products in different currencies share a cart (checkout refuses that), never one sum."""
    totals: dict[str, Decimal] = {}
    for line in lines:
        totals[line.product.currency] = totals.get(line.product.currency, Decimal("0.00")) + line.line_total
    return [(amount, currency) for currency, amount in totals.items()]


def orders_for_owner(owner: uuid.UUID | None, limit: int = 50):
    if owner is None:
        return Order.objects.none()
    return Order.objects.filter(owner=owner).prefetch_related("lines")[:limit]


def order_for_owner(owner: uuid.UUID | None, pk: int) -> Order | None:
    if owner is None:
        return None
    return Order.objects.filter(owner=owner, pk=pk).prefetch_related("lines__product").first()


def orders_of_visits(visit_ids) -> list[tuple[int, object, object]]:
    """``(visit_id, created, total)`` of the orders of those visits (experiments' conversions and
    revenue, recommendations.experimenting.order_source_register)."""
    ids = list(visit_ids)
    out = []
    for start in range(0, len(ids), 5000):
        out += Order.objects.filter(visit_id__in=ids[start:start + 5000]).values_list("visit_id", "created", "total")
    return out


# --- Product page widgets: the recommender's answers as products ----------------------------------


class RecommendedProducts(list):
    """Products of a widget in order, with what answered them (for data-model-version and "Why these?")."""

    def __init__(self, result):
        super().__init__(s.product for s in result.items)
        self.model_version = result.model_version or ""
        self.strategy = result.strategy
        self.explanation = result.explanation
        # The running experiment that answered ({"id", "arm", "mode"}) or None; each card's own
        # event source and version (an experiment's arm; in interleaving each item's arm's).
        self.experiment = result.experiment
        self.cards = [(s.product, s.model_version if s.source else self.model_version, s.source)
                      for s in result.items]


def recommended_for_you(visit_uuid: uuid.UUID | None, product: Product, limit: int = 8) -> RecommendedProducts:
    """The visit's next products from the active recommender (popular ones of this category as
    fallback); without a visit (``services.visit_uuid_for_visitor``) this product is the session."""
    items = None if visit_uuid is not None else [product.pk]
    return RecommendedProducts(ranking.recommend_for_session(session=visit_uuid, items=items, k=limit, explain=True,
                                                             category=product.category_id))


def similar_items(product: Product, limit: int = 8, visit_uuid: uuid.UUID | None = None) -> RecommendedProducts:
    return RecommendedProducts(ranking.similar_items(product, k=limit, visit=visit_uuid))
