"""Catalogue services: the functions that change products and categories."""
from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.utils.text import slugify

from .models import Category, Product

_CHUNK = 5000


def category_ensure_path(path: str, separator: str = ".") -> Category | None:
    """Return the leaf category of a dotted path like ``electronics.audio.headphone``, creating the chain."""
    parts = [p.strip() for p in (path or "").split(separator) if p.strip()]
    parent = None
    slug_parts: list[str] = []
    for part in parts:
        slug_parts.append(slugify(part) or "x")
        slug = "-".join(slug_parts)[:255]
        parent, _ = Category.objects.get_or_create(
            slug=slug, defaults={"name": part.replace("_", " ").title(), "parent": parent}
        )
    return parent


def product_stubs_ensure(
    external_ids: Iterable[str], categories: dict[str, str] | None = None
) -> dict[str, int]:
    """Map external item ids to product pks, creating stub products for ids not in the catalogue.

    Importers of event logs call this for items that have no metadata yet; ``categories`` maps an
    external id to a category path for the stubs. Safe under concurrency (unique external_id,
    ``ignore_conflicts``) and done in chunks so a large log never loads the whole catalogue.
    """
    ids = list(dict.fromkeys(str(x) for x in external_ids))
    categories = categories or {}
    result: dict[str, int] = {}
    category_cache: dict[str, Category | None] = {}
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        found = dict(Product.objects.filter(external_id__in=chunk).values_list("external_id", "pk"))
        missing = [x for x in chunk if x not in found]
        if missing:
            stubs = []
            for ext in missing:
                cat_path = categories.get(ext) or ""
                if cat_path not in category_cache:
                    category_cache[cat_path] = category_ensure_path(cat_path) if cat_path else None
                stubs.append(
                    Product(
                        external_id=ext,
                        name=f"Item {ext}",
                        slug=slugify(f"item-{ext}")[:255] or "item",
                        category=category_cache[cat_path],
                    )
                )
            with transaction.atomic():
                Product.objects.bulk_create(stubs, ignore_conflicts=True, batch_size=_CHUNK)
            found.update(Product.objects.filter(external_id__in=missing).values_list("external_id", "pk"))
        result.update(found)
    return result
