"""Shopper-facing names of item clusters ("Sofas", "Mostly Lenovo notebooks", "Like Acme Runner 104")
and the staff-facing composition ("Sofa 67% · Notebook 28%"), from the products of each cluster.

No Django here: category ids, brands and a category tree in, strings out (services feed it).
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

# Shares of the cluster's products (all of them: a product without a category counts against every
# category, so a group where few products have one is never named after it).
PURE = 0.8  # "Sofas": at least this share of the group is sofas
MOSTLY = 0.5  # "Mostly sofas"
PAIR_MIN = 0.2  # "Sofas and notebooks": each at least this, together at least PURE

# Category words that have no plural in a shop's wording ("Mostly audio", not "Mostly audios").
UNCOUNTABLE = frozenset({
    "accessories", "apparel", "audio", "bedding", "clothing", "coffee", "cosmetics", "electronics", "equipment",
    "food", "footwear", "furniture", "hardware", "jewellery", "jewelry", "kids", "kitchen", "lighting", "luggage",
    "media", "music", "software", "sport", "sports", "stationery", "tea", "video", "wear",
})
IRREGULAR = {"mouse": "mice", "knife": "knives", "shelf": "shelves", "child": "children", "person": "people"}
VOWELS = set("aeiouy")

Tree = Mapping[int, tuple[str, "int | None"]]  # category id -> (name, parent id)


def plural(name: str) -> str:
    """The plural of a category name's last word ("Hair Cutter" -> "Hair Cutters", "Tv" -> "TVs")."""
    words = name.split()
    if not words:
        return name
    last = words[-1]
    low = last.lower()
    if not last.isalpha() or low in UNCOUNTABLE or low.endswith("ing"):
        out = last  # "Cat 3", "Audio", "Running": no plural
    elif low in IRREGULAR:
        out = last[0] + IRREGULAR[low][1:]
    elif low.endswith("s") and not low.endswith("ss"):
        out = last  # already a plural: "Headphones", "Jackets"
    elif len(low) <= 3 and not set(low) & VOWELS:
        out = last.upper() + "s"  # an acronym title-cased by the importer: "Tv" -> "TVs", "Pc" -> "PCs"
    elif low.endswith("y") and len(low) > 1 and low[-2] not in VOWELS:
        out = last[:-1] + "ies"
    elif low.endswith(("s", "x", "z", "ch", "sh")):
        out = last + "es"
    else:
        out = last + "s"
    return " ".join(words[:-1] + [out])


def _lower(text: str) -> str:
    """Lower-case for the middle of a sentence, keeping words with inner capitals ("TVs", "iPhone")."""
    return " ".join(w if any(ch.isupper() for ch in w[1:]) else w.lower() for w in text.split())


def _sentence(text: str) -> str:
    """First word as the importer wrote it (capitalised), the rest lower-cased: "Hair cutters"."""
    first, _, rest = text.partition(" ")
    first = first[:1].upper() + first[1:]
    return f"{first} {_lower(rest)}" if rest else first


def brand_display(brand: str) -> str:
    """Brands are imported lower-case ("lenovo", "hp"): "Lenovo", "HP"; mixed case is kept ("iRobot")."""
    brand = brand.strip()
    if brand != brand.lower():
        return brand
    if len(brand) <= 3 and not set(brand) & VOWELS:
        return brand.upper()
    return brand.title()


def category_plural(category: int, tree: Tree) -> str:
    """The plural a shopper would say for a category: "Sofas"; a leaf that only qualifies its
    parent takes the parent's noun, "Running" under "Shoes" -> "Running shoes"."""
    name, parent = tree[category]
    last = name.split()[-1].lower() if name.split() else ""
    if last.endswith("ing") and parent in tree:
        noun = plural(tree[parent][0])
        if noun.split() and noun.split()[-1].lower() not in UNCOUNTABLE:
            return f"{name} {_lower(noun)}"
    return plural(name)


def _chain(category: int, tree: Tree) -> list[int]:
    """The category and its ancestors, leaf first (a cycle in bad data stops the walk)."""
    out, seen = [], set()
    while category is not None and category in tree and category not in seen:
        seen.add(category)
        out.append(category)
        category = tree[category][1]
    return out


def cluster_name(categories: Sequence[int | None], brands: Sequence[str], typical: str, tree: Tree) -> str:
    """A shopper-facing name for a cluster of products.

    ``categories`` and ``brands``: one entry per product of the cluster (None / "" when unknown);
    ``typical``: the name of its most typical product (the one closest to the cluster's centre);
    ``tree``: category id -> (name, parent id). In order: a brand of one category ("Lenovo
    notebooks", "Mostly Lenovo notebooks"), one category ("Sofas"), two ("Sofas and notebooks"),
    most in one ("Mostly sofas"), a parent category ("Mostly electronics"), a brand ("Mostly
    Samsung products"), else "Like <typical product>". "" for a cluster without products.
    """
    n = len(categories)
    if n == 0:
        return ""
    cats = [c if c is not None and c in tree else None for c in categories]
    brand_keys = [b.strip().lower() for b in brands]

    def prefix(share: float) -> str:
        return "" if share >= PURE else "Mostly "

    def category_words(cat: int, share: float) -> str:
        words = category_plural(cat, tree)
        return _sentence(words) if share >= PURE else _lower(words)

    leaf = Counter(c for c in cats if c is not None).most_common(2)
    pairs = Counter((c, b) for c, b in zip(cats, brand_keys) if c is not None and b).most_common(1)
    if pairs and pairs[0][1] / n >= MOSTLY:
        (cat, key), count = pairs[0]
        brand = next(b for b, k in zip(brands, brand_keys) if k == key)
        return f"{prefix(count / n)}{brand_display(brand)} {_lower(category_plural(cat, tree))}"
    if leaf:
        (c1, n1), share1 = leaf[0], leaf[0][1] / n
        if share1 >= PURE:
            return category_words(c1, share1)
        if len(leaf) > 1:
            c2, n2 = leaf[1]
            if n2 / n >= PAIR_MIN and (n1 + n2) / n >= PURE:
                return f"{_sentence(category_plural(c1, tree))} and {_lower(category_plural(c2, tree))}"
        if share1 >= MOSTLY:
            return f"Mostly {category_words(c1, share1)}"
        # No leaf category leads: the deepest parent that most of the group shares ("Mostly electronics").
        chains = [_chain(c, tree) for c in cats if c is not None]
        counts = Counter(a for chain in chains for a in chain)
        depth = {a: len(_chain(a, tree)) for a in counts}
        shared = [a for a, count in counts.items() if count / n >= MOSTLY]
        if shared:
            best = max(shared, key=lambda a: (depth[a], counts[a], -a))
            share = counts[best] / n
            return f"{prefix(share)}{category_words(best, share)}"
    top_brand = Counter(k for k in brand_keys if k).most_common(1)
    if top_brand and top_brand[0][1] / n >= MOSTLY:
        key, count = top_brand[0]
        brand = next(b for b, k in zip(brands, brand_keys) if k == key)
        return f"{prefix(count / n)}{brand_display(brand)} products"
    return f"Like {typical}" if typical else ""


def names_unique(names: Sequence[str], typicals: Sequence[str]) -> list[str]:
    """Several clusters may earn the same name ("Sofas" twice in a shop full of sofas): each of
    those gets its most typical product appended, "Sofas, like Acme Corner sofa 117"."""
    seen = Counter(names)
    out = []
    for name, typical in zip(names, typicals):
        if name and seen[name] > 1 and typical and not name.startswith("Like "):
            name = f"{name}, like {typical}"
        out.append(name)
    return out


def composition(categories: Sequence[int | None], tree: Tree, top: int = 2) -> str:
    """For staff: the cluster's most common categories with their share of its categorised
    products, "Sofa 67% · Notebook 28%"; "no categories" when none has one."""
    known = [c for c in categories if c is not None]
    if not known:
        return "no categories"
    parts = [f"{tree[c][0] if c in tree else '?'} {100 * count / len(known):.0f}%"
             for c, count in Counter(known).most_common(top)]
    return " · ".join(parts)
