"""The recommender's process caches behind one module: products by pk (with their API
representation) and whatever other modules register (the served model, the popular pools).
Tests and the CLI call :func:`reset`; nobody pokes another module's privates to clear a cache."""
from __future__ import annotations

from collections.abc import Callable

from catalog.cache import version as catalog_version
from catalog.models import Category, Product

from .gru4rec.lru import LRU

# Every concrete field of a product: the rows of the whole-catalogue read.
_PRODUCT_ATTNAMES = [f.attname for f in Product._meta.concrete_fields]
_PK = _PRODUCT_ATTNAMES.index(Product._meta.pk.attname)
_CATEGORY_FIELD = Product._meta.get_field("category")


class _ProductCache:
    """Products by pk, kept in this process and dropped whenever the catalogue's cache version
    changes (catalog.cache.bump() on every product change), so a steady stream of requests does no
    ORM work at all. Inactive products are cached as such.

    A catalogue of at most MAX_ENTRIES products is read whole, as plain rows, on the first lookup
    of each version (one statement for the products, one for the categories: 40,000 products in
    ~0.1 s), and a product object is built from its row when first asked for (no query): a model
    answers from its whole catalogue, so reading products one miss at a time cost a query on most
    new questions for tens of thousands of requests after every start and every catalogue change
    (bench/recommend_http.sh, a new question every request). A pk missing from the rows names no
    product. A larger catalogue is read one miss at a time (one query per lookup with misses)."""

    MAX_ENTRIES = 100_000

    def __init__(self):
        self.forget()

    def forget(self) -> None:
        """Everything, also what this process learnt of the catalogue's size."""
        self.clear()
        self.too_big = False  # the catalogue was over MAX_ENTRIES: misses are queried (until a restart)

    def clear(self) -> None:
        self.version = None
        self.products: dict[int, Product | None] = {}
        self.serialized: dict[int, dict] = {}  # API representation, same lifetime as the products
        self.rows: dict[int, tuple] | None = None  # the whole catalogue's rows, when it was read whole
        self.categories: dict[int, Category] = {}

    def _read_whole(self) -> None:
        """Read every product's row and every category (at most MAX_ENTRIES products), or note that
        the catalogue is too big for that."""
        limit = self.MAX_ENTRIES
        rows = list(Product.objects.order_by().values_list(*_PRODUCT_ATTNAMES)[: limit + 1])
        if len(rows) > limit:
            self.too_big = True
            return
        self.categories = {c.pk: c for c in Category.objects.order_by()}
        self.rows = {row[_PK]: row for row in rows}

    def _build(self, row: tuple) -> Product:
        """A product object from its row, its category attached (what select_related gives)."""
        product = Product.from_db(Product.objects.db, _PRODUCT_ATTNAMES, row)
        _CATEGORY_FIELD.set_cached_value(product, self.categories.get(product.category_id))
        return product

    def _lookup(self, pks) -> dict[int, Product | None]:
        try:
            current = catalog_version()
        except Exception:  # no catalogue cache version: never trust the cache
            current = object()
        if current != self.version or len(self.products) > self.MAX_ENTRIES:
            self.clear()
            self.version = current
        products = self.products
        missing = [pk for pk in pks if pk not in products]
        if not missing:
            return products
        if self.rows is None and not self.too_big and isinstance(current, str):
            self._read_whole()
        if self.rows is not None:
            for pk in missing:
                row = self.rows.get(pk)
                products[pk] = None if row is None else self._build(row)
            return products
        found = {p.pk: p for p in Product.objects.filter(pk__in=missing).select_related("category")}
        for pk in missing:
            products[pk] = found.get(pk)
        return products

    def get(self, pks: list[int]) -> dict[int, Product]:
        products = self._lookup(pks)
        return {pk: p for pk in pks if (p := products.get(pk)) is not None and p.is_active}

    def known(self, pks) -> set[int]:
        """The pks among ``pks`` that name a product, active or not."""
        products = self._lookup(pks)
        return {pk for pk in pks if products.get(pk) is not None}


class AnswerCache(LRU):
    """A loaded model's recent answers, least recently used dropped first: ``key -> value`` for a
    bundle's candidate lists (ranking keys them by the session's item indices, how many were asked
    and whether seen items are excluded). One per :class:`serving.LoadedModel`, so it lives and
    dies with that version: a reload starts empty, and nothing outside the bundle (the score mask
    is fixed at load; products deactivated since are dropped after the lookup) changes an answer.
    A shopper's page asks the same question several times (the recommendations block, a reload,
    the next page of the grid) and the model's answer is the same each time. ``size`` 0 keeps
    nothing. Thread-safe (gthread and runserver workers share one bundle)."""


_products = _ProductCache()
_resets: dict[str, Callable[[], None]] = {}


def products_active(pks: list[int]) -> dict[int, Product]:
    """The active products among ``pks`` (at most one query, none when cached)."""
    if not pks:
        return {}
    return _products.get(pks)


def products_known(pks) -> set[int]:
    """The pks among ``pks`` that name a product (active or not): input validation of the API,
    answered from the process's product cache (no query once the products were seen)."""
    return _products.known(list(dict.fromkeys(int(pk) for pk in pks))) if pks else set()


def product_serialized(pk: int) -> dict | None:
    """The API representation of a product cached with it (None when not cached yet)."""
    return _products.serialized.get(pk)


def product_serialized_put(pk: int, data: dict) -> None:
    _products.serialized[pk] = data


def reset_register(name: str, fn: Callable[[], None]) -> None:
    """Register a process cache's clear function with :func:`reset` (modules above this one:
    serving's loaded model, selectors' popular memo), so this module needs not import them."""
    _resets[name] = fn


def reset() -> None:
    """Forget every process cache (tests, after a restore): the next request reads afresh."""
    _products.forget()
    for fn in list(_resets.values()):
        fn()
