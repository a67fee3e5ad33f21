"""Shopper-facing cluster names from a small category tree (no database)."""
import pytest

from recommendations.clusters.naming import brand_display, cluster_name, composition, names_unique, plural

TREE = {
    1: ("Furniture", None), 2: ("Living Room", 1), 3: ("Sofa", 2), 4: ("Armchair", 2),
    10: ("Computers", None), 11: ("Notebook", 10),
    20: ("Electronics", None), 21: ("Audio", 20), 22: ("Headphones", 21), 23: ("Smartphone", 20), 24: ("Tv", 20),
    30: ("Apparel", None), 31: ("Shoes", 30), 32: ("Running", 31), 40: ("Sport", None), 41: ("Cycling", 40),
}
SOFA, ARMCHAIR, NOTEBOOK, HEADPHONES, SMARTPHONE, TV = 3, 4, 11, 22, 23, 24


def name(cats, brands=None, typical="Acme Sofa 101"):
    return cluster_name(cats, brands or [""] * len(cats), typical, TREE)


@pytest.mark.parametrize("word, expected", [
    ("Sofa", "Sofas"), ("Headphones", "Headphones"), ("Battery", "Batteries"), ("Key", "Keys"), ("Box", "Boxes"),
    ("Dress", "Dresses"), ("Coffee", "Coffee"), ("Running", "Running"), ("Electronics", "Electronics"),
    ("Hair Cutter", "Hair Cutters"), ("Tv", "TVs"), ("Mouse", "Mice"), ("Cat 3", "Cat 3"), ("", ""),
])
def test_plural(word, expected):
    assert plural(word) == expected


def test_one_category():
    assert name([SOFA] * 10) == "Sofas"
    assert name([SOFA] * 8 + [None, NOTEBOOK]) == "Sofas"  # 80%: the threshold is inclusive


def test_a_qualifying_leaf_takes_its_parents_noun():
    assert name([32] * 10) == "Running shoes"  # apparel.shoes.running: "Running" alone says nothing
    assert name([32] * 6 + [SOFA] * 4) == "Running shoes and sofas"
    assert name([41] * 10) == "Cycling"  # "Sport" is no noun to borrow


def test_two_categories():
    assert name([SOFA] * 7 + [NOTEBOOK] * 3) == "Sofas and notebooks"  # was "Sofa 70% · Notebook 30%"
    assert name([TV] * 6 + [SOFA] * 2) == "TVs and sofas"  # 75% + 25% of 8


def test_mostly_one_category_when_the_second_is_small():
    assert name([SOFA] * 6 + [NOTEBOOK, HEADPHONES, TV, SMARTPHONE]) == "Mostly sofas"


def test_products_without_a_category_count_against_every_category():
    assert name([SOFA] * 5 + [None] * 5) == "Mostly sofas"
    assert name([SOFA] * 4 + [None] * 6) == "Like Acme Sofa 101"


def test_brand_of_one_category():
    lenovo = ["lenovo"] * 8 + ["hp"]
    assert name([NOTEBOOK] * 9 + [SOFA], lenovo + [""]) == "Lenovo notebooks"
    assert name([NOTEBOOK] * 10, ["lenovo"] * 6 + ["hp"] * 4) == "Mostly Lenovo notebooks"
    # brands are counted case-blind and shown as the importer wrote a mixed-case one
    assert name([NOTEBOOK] * 10, ["Lenovo"] * 3 + ["lenovo"] * 7) == "Lenovo notebooks"


def test_parent_category_when_no_leaf_leads():
    assert name([HEADPHONES] * 4 + [SMARTPHONE] * 3 + [TV] * 3) == "Electronics"
    # Electronics 60%: deeper than nothing else over half; Furniture and Living Room hold 40%
    assert name([HEADPHONES] * 3 + [SMARTPHONE] * 2 + [TV] + [SOFA] * 2 + [ARMCHAIR] * 2) == "Mostly electronics"
    # the deepest shared parent wins: Living Room (depth 2) over Furniture (depth 1)
    assert name([SOFA] * 4 + [ARMCHAIR] * 3 + [NOTEBOOK] * 3) == "Mostly living rooms"


def test_brand_alone():
    assert name([None] * 10, ["hp"] * 9 + [""]) == "HP products"
    assert name([None] * 10, ["samsung"] * 6 + ["lg"] * 4) == "Mostly Samsung products"


def test_nothing_dominates_names_the_most_typical_product():
    assert name([SOFA, NOTEBOOK, TV, HEADPHONES, None], ["a", "b", "c", "d", "e"]) == "Like Acme Sofa 101"
    assert name([None] * 3, typical="") == ""
    assert name([]) == ""


def test_unknown_category_ids_are_no_category():
    assert name([999] * 10) == "Like Acme Sofa 101"


def test_duplicate_names_get_their_typical_product():
    out = names_unique(["Sofas", "Notebooks", "Sofas", "Like X", ""], ["A 1", "B 2", "C 3", "X", ""])
    assert out == ["Sofas, like A 1", "Notebooks", "Sofas, like C 3", "Like X", ""]


def test_composition_for_staff():
    assert composition([SOFA] * 2 + [NOTEBOOK] + [None], TREE) == "Sofa 67% · Notebook 33%"
    assert composition([SOFA, NOTEBOOK, TV], TREE, top=1) == "Sofa 33%"
    assert composition([None, None], TREE) == "no categories"


@pytest.mark.parametrize("raw, shown", [("lenovo", "Lenovo"), ("hp", "HP"), ("jbl", "JBL"), ("iRobot", "iRobot"),
                                        (" asus ", "Asus")])
def test_brand_display(raw, shown):
    assert brand_display(raw) == shown
