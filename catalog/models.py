"""Catalogue data: a category tree and the products shoppers browse."""
from django.db import models

from .currencies import validate_currency


class Category(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=255, unique=True)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")

    class Meta:
        verbose_name_plural = "categories"
        ordering = ["slug"]

    def __str__(self):
        return self.slug


class Product(models.Model):
    # The id the item has in imported data (a YOOCHOOSE item id, a REES46 product_id, ...):
    # the key the recommender's item map uses.
    external_id = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=255)
    # Products are addressed by pk; the slug is display text, so no index to maintain on inserts.
    slug = models.SlugField(max_length=255, db_index=False)
    description = models.TextField(blank=True)
    price = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    currency = models.CharField(max_length=3, default="EUR", validators=[validate_currency])
    # No single-column index: product_cat_active_id (category, is_active, id) serves category lookups.
    category = models.ForeignKey(
        Category, null=True, blank=True, on_delete=models.SET_NULL, related_name="products", db_index=False
    )
    brand = models.CharField(max_length=120, blank=True)
    is_active = models.BooleanField(default=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["is_active", "id"], name="product_active_id"),
            models.Index(fields=["category", "is_active", "id"], name="product_cat_active_id"),
            # The list views' sort orders (each ends on id, the tiebreaker).
            models.Index(fields=["is_active", "price", "id"], name="product_active_price_id"),
            models.Index(fields=["is_active", "name", "id"], name="product_active_name_id"),
            # PostgreSQL also gets a trigram index for name search (migration 0002, vendor-specific).
        ]

    def __str__(self):
        return self.name


class CatalogVersion(models.Model):
    """The catalogue's cache version (a single row): every cached catalogue read is keyed with its
    token, and a catalogue change replaces the token (catalog.cache.bump), in the database, so that
    a change Redis missed during a stall cannot leave processes and cached pages on the old catalogue."""

    token = models.CharField(max_length=32)

    def __str__(self):
        return self.token
