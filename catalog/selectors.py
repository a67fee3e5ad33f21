"""Catalogue selectors: functions that read products and categories."""
from __future__ import annotations

from dataclasses import dataclass

from django.core.cache import cache
from django.db.models import QuerySet

from shop.validators import is_ascii_digits

from . import cache as catalog_cache
from .models import Category, Product

# What `ordering` / the storefront's sort accept; each ends on a unique column so pages are stable.
PRODUCT_ORDERINGS = {
    "id": ("id",),
    "-id": ("-id",),
    "price": ("price", "id"),
    "-price": ("-price", "-id"),
    "name": ("name", "id"),
    "-name": ("-name", "-id"),
}


@dataclass(frozen=True)
class CategoryNode:
    id: int
    name: str
    slug: str
    parent_id: int | None
    depth: int


def category_tree() -> list[CategoryNode]:
    """All categories in depth-first order with their depth; cached per catalogue version."""
    key = catalog_cache.key("category-tree")
    nodes = cache.get(key)
    if nodes is None:
        rows = list(Category.objects.order_by("slug").values_list("id", "name", "slug", "parent_id"))
        children: dict[int | None, list] = {}
        for row in rows:
            children.setdefault(row[3], []).append(row)
        nodes = []
        stack = [(row, 0) for row in reversed(children.get(None, []))]
        seen: set[int] = set()
        while stack:
            (pk, name, slug, parent_id), depth = stack.pop()
            if pk in seen:
                continue
            seen.add(pk)
            nodes.append(CategoryNode(pk, name, slug, parent_id, depth))
            stack.extend((child, depth + 1) for child in reversed(children.get(pk, [])))
        cache.set(key, nodes, catalog_cache.cache_seconds())
    return nodes


def category_resolve(value) -> CategoryNode | None:
    """A category by id (ASCII digits) or slug; None when there is no such category."""
    value = str(value or "").strip()
    if not value:
        return None
    # isdigit() alone passes '¹' (int() refuses it: a 500) and '٣' (int() reads 3).
    pk = int(value) if is_ascii_digits(value) else None
    for node in category_tree():
        if node.id == pk or node.slug == value:
            return node
    return None


def category_descendant_ids(category_id: int) -> list[int]:
    """The category and every category below it (from the cached tree: no recursive SQL)."""
    children: dict[int | None, list[int]] = {}
    for node in category_tree():
        children.setdefault(node.parent_id, []).append(node.id)
    result, stack = [], [category_id]
    while stack:
        pk = stack.pop()
        result.append(pk)
        stack.extend(children.get(pk, []))
    return result


def category_ancestors(category_id: int | None) -> list[CategoryNode]:
    """Root-first chain of categories down to ``category_id`` (for breadcrumbs)."""
    by_id = {node.id: node for node in category_tree()}
    chain = []
    while category_id is not None and category_id in by_id and len(chain) < 50:
        node = by_id[category_id]
        chain.append(node)
        category_id = node.parent_id
    return list(reversed(chain))


def product_list(*, category_id: int | None = None, search: str = "", ordering: str = "id") -> QuerySet[Product]:
    """Active products, optionally in a category (with its descendants) and matching a name search.

    Lazy: callers slice it (through ``catalog.pagination.CachedCountPaginator`` for pages).
    """
    qs = Product.objects.filter(is_active=True).select_related("category")
    if category_id is not None:
        ids = category_descendant_ids(category_id)
        qs = qs.filter(category_id=ids[0]) if len(ids) == 1 else qs.filter(category_id__in=ids)
    search = (search or "").strip()
    if search:
        qs = qs.filter(name__icontains=search)
    return qs.order_by(*PRODUCT_ORDERINGS.get(ordering, PRODUCT_ORDERINGS["id"]))


def product_get(pk: int, *, active_only: bool = True) -> Product | None:
    qs = Product.objects.select_related("category")
    if active_only:
        qs = qs.filter(is_active=True)
    return qs.filter(pk=pk).first()


def product_external_ids(pks) -> dict[int, str]:
    """Product pk -> external id for ``pks`` (unknown pks are absent): the names the training data
    and the models give products. IN lists of 5,000, so a large catalogue is a few queries."""
    pks = [int(pk) for pk in pks]
    out: dict[int, str] = {}
    for start in range(0, len(pks), 5000):
        out.update(Product.objects.filter(pk__in=pks[start : start + 5000]).values_list("pk", "external_id"))
    return out
