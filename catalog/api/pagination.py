"""DRF page-number pagination over the catalogue's fast paginator (cached count, keyset deep pages)."""
from rest_framework.pagination import PageNumberPagination

from catalog.pagination import CachedCountPaginator


class ProductPagination(PageNumberPagination):
    django_paginator_class = CachedCountPaginator
    page_size = 24
    page_size_query_param = "page_size"
    max_page_size = 100  # larger values are clamped to this
