"""Storefront pages. Thin: they call selectors and services and render templates."""
from django.shortcuts import render


def index(request):
    return render(request, "storefront/index.html", {})
