"""DRF page-number pagination over the catalogue's fast paginator (cached count, keyset deep pages)."""
from django.http import QueryDict
from rest_framework.utils.urls import remove_query_param, replace_query_param

from catalog.pagination import CachedCountPaginator
from shop.pagination import PageNumberPagination


class ProductPagination(PageNumberPagination):
    django_paginator_class = CachedCountPaginator
    page_size = 24
    page_size_query_param = "page_size"
    max_page_size = 100  # larger values are clamped to this
    # Links carry only the parameters that select a page, the page size as read: responses are cached
    # per validated query (catalog.api.views), so one client's junk parameters must not be in the
    # links every other client then gets.
    link_params = ("category", "search", "ordering")

    def _link_base(self) -> str:
        request = self.request
        query = QueryDict(mutable=True)
        for name in self.link_params:
            value = request.query_params.get(name)
            if value:
                query[name] = value
        if self.page_size_query_param in request.query_params:
            query[self.page_size_query_param] = str(self.get_page_size(request))
        base = request.build_absolute_uri(request.path)
        return base + ("?" + query.urlencode() if query else "")

    def get_next_link(self):
        if not self.page.has_next():
            return None
        return replace_query_param(self._link_base(), self.page_query_param, self.page.next_page_number())

    def get_previous_link(self):
        if not self.page.has_previous():
            return None
        number = self.page.previous_page_number()
        if number == 1:
            return remove_query_param(self._link_base(), self.page_query_param)
        return replace_query_param(self._link_base(), self.page_query_param, number)
