"""Demo data for `make demo`: a generated catalogue so a newcomer sees a working shop at once."""
from __future__ import annotations

import random
from decimal import Decimal

from django.db import transaction
from django.utils.text import slugify

from catalog.models import Category, Product
from catalog.services import catalog_cache_invalidate, category_ensure_path

DEMO_CATEGORIES = {
    "electronics.audio.headphones": ["Studio", "Wireless", "Noise-cancelling", "Sport", "Kids"],
    "electronics.smartphone": ["Phone", "Phone Pro", "Phone Mini", "Phone Max", "Phone Lite"],
    "electronics.computers.notebook": ["Notebook", "Ultrabook", "Gaming laptop", "Chromebook"],
    "appliances.kitchen.coffee": ["Espresso machine", "Grinder", "Drip brewer", "Milk frother"],
    "apparel.shoes.running": ["Runner", "Trail shoe", "Racer", "Daily trainer"],
    "apparel.jackets": ["Rain jacket", "Down jacket", "Softshell", "Windbreaker"],
    "furniture.living_room.sofa": ["Sofa", "Corner sofa", "Armchair", "Footstool"],
    "sport.bicycle": ["City bike", "Road bike", "Gravel bike", "E-bike"],
}
BRANDS = ["acme", "nordic", "vertex", "lumen", "orbit", "kestrel", "sola", "tundra"]


def demo_catalogue_generate(n_products: int = 600, seed: int = 7) -> int:
    """Create ``n_products`` demo products spread over the demo categories; returns how many were added."""
    if Product.objects.exists():
        return 0
    rng = random.Random(seed)
    leaves = [(category_ensure_path(path), names) for path, names in DEMO_CATEGORIES.items()]
    products = []
    for i in range(n_products):
        category, names = leaves[i % len(leaves)]
        brand = rng.choice(BRANDS)
        name = f"{brand.title()} {rng.choice(names)} {100 + i}"
        products.append(
            Product(
                external_id=f"demo-{i + 1}",
                name=name,
                slug=slugify(name)[:255],
                description=f"{name}: a demo product in {category.name}, made by {brand.title()}.",
                price=Decimal(rng.randrange(500, 150000)) / 100,
                category=category,
                brand=brand,
            )
        )
    with transaction.atomic():
        Product.objects.bulk_create(products, batch_size=1000)
    # bulk_create bypasses the services: drop cached API pages and counts explicitly.
    catalog_cache_invalidate()
    return len(products)


def demo_setup(stdout=None) -> dict:
    """Everything `make demo` needs on the embedded default; a second run reuses what exists."""
    added = demo_catalogue_generate()
    summary = {"products_added": added, "products": Product.objects.count(), "categories": Category.objects.count()}
    if stdout is not None:
        stdout.write(f"demo catalogue: {summary['products']} products in {summary['categories']} categories"
                     f" ({added} added now)")
    from recommendations.demo import demo_model_ensure

    summary["recommendations"] = demo_model_ensure(stdout=stdout)
    return summary
