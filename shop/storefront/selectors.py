"""Storefront reads: the cart's lines, the session's orders, and the product page's widgets."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal

from catalog import selectors as catalog_selectors
from catalog.models import Product
from shop.models import Order

logger = logging.getLogger(__name__)

CART_SESSION_KEY = "cart"


@dataclass
class CartLine:
    product: Product
    quantity: int

    @property
    def line_total(self) -> Decimal:
        return self.product.price * self.quantity


def cart_quantities(session) -> dict[int, int]:
    """The cart as {product id: quantity}; whatever a session holds, only well-formed entries."""
    raw = session.get(CART_SESSION_KEY) or {}
    cart = {}
    if isinstance(raw, dict):
        for key, value in raw.items():
            try:
                cart[int(key)] = int(value)
            except (TypeError, ValueError):
                continue
    return cart


def cart_lines(session) -> list[CartLine]:
    """Cart lines with their products (inactive ones included: checkout reports them), in adding order."""
    cart = cart_quantities(session)
    products = Product.objects.select_related("category").in_bulk(list(cart))
    return [CartLine(products[pk], qty) for pk, qty in cart.items() if pk in products]


def cart_total(lines: list[CartLine]) -> Decimal:
    return sum((line.line_total for line in lines), Decimal("0.00"))


def orders_for_session(session_key: str | None, limit: int = 50):
    if not session_key:
        return Order.objects.none()
    return Order.objects.filter(session_key=session_key).prefetch_related("lines")[:limit]


def order_for_session(session_key: str | None, pk: int) -> Order | None:
    if not session_key:
        return None
    return Order.objects.filter(session_key=session_key, pk=pk).prefetch_related("lines__product").first()


# --- Product page widgets ----------------------------------------------------------------------
# Placeholders until the recommendations app exists: the recommendations engineer replaces
# recommended_for_you() / similar_items() (same signatures, lists of Product, plus a model version).


def _tracking_popular(category_id: int | None, limit: int, exclude=()) -> list[Product] | None:
    """Popular products from tracking's popularity selector if it exists yet, else None.

    Written defensively: tracking is built concurrently and its selector's final name and
    signature may differ; anything unexpected means "no popularity data" rather than a broken page.
    """
    try:
        from tracking import selectors as tracking_selectors
    except ImportError:
        return None
    fn = getattr(tracking_selectors, "popular_products", None)
    if fn is None:
        return None
    try:
        result = list(fn(limit, category=category_id, exclude=list(exclude)))
    except TypeError:
        logger.warning("tracking.selectors.popular_products has an unexpected signature; using recent products")
        return None
    if result and not isinstance(result[0], Product):
        result = catalog_selectors.products_by_ids(getattr(x, "pk", x) for x in result)
    return result


def popular_in_category(category_id: int | None, *, exclude=(), limit: int = 8) -> list[Product]:
    """Popular active products of a category; recent ones when there is no popularity data (yet)."""
    exclude = set(exclude)
    popular = _tracking_popular(category_id, limit + len(exclude), exclude)
    if popular:
        products = [p for p in popular if p.pk not in exclude and p.is_active][:limit]
        if products:
            return products
    return catalog_selectors.products_recent_in_category(category_id, exclude=exclude, limit=limit)


class RecommendedProducts(list):
    """Products of a widget in order, with what answered them (for data-model-version and "Why these?")."""

    def __init__(self, result):
        super().__init__(s.product for s in result.items)
        self.model_version = result.model_version or ""
        self.strategy = result.strategy
        self.explanation = result.explanation


def recommended_for_you(request, product: Product, limit: int = 8) -> RecommendedProducts:
    """The visit's next products from the active recommender (popular ones of this category as fallback)."""
    from recommendations.services import recommend_for_session

    items = None
    visit_id = None
    try:
        from tracking.services import visit_for_request

        visit_id = visit_for_request(request).uuid
    except Exception:  # no tracking: this product is the session
        items = [product.pk]
    return RecommendedProducts(recommend_for_session(session=visit_id, items=items, k=limit, explain=True,
                                                     category=product.category_id))


def similar_items(product: Product, limit: int = 8) -> RecommendedProducts:
    from recommendations.services import similar_items as recommendations_similar

    return RecommendedProducts(recommendations_similar(product, k=limit))
