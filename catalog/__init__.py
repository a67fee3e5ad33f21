"""Catalogue: categories and products."""
