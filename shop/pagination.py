"""Pagination that reads ``page`` and ``page_size`` as ASCII digits only (see shop.validators):
Django's Paginator and DRF's page-number pagination convert them with ``int()``, which takes
any Unicode digit. The project's default DRF pagination class and the base of every paginator."""
from django.core.paginator import PageNotAnInteger, Paginator
from rest_framework import pagination
from rest_framework.exceptions import ValidationError

from shop.validators import ascii_int, is_ascii_digits


class AsciiPaginator(Paginator):
    """Django's Paginator; a page number given as text must be ASCII digits."""

    def validate_number(self, number):
        if isinstance(number, str):
            try:
                number = ascii_int(number)
            except ValueError:
                raise PageNotAnInteger(self.error_messages["invalid_page"]) from None
        return super().validate_number(number)


class PageNumberPagination(pagination.PageNumberPagination):
    """DRF's page-number pagination over AsciiPaginator, read as the schema documents it: a page
    that is not a whole number from 1 (an empty one too) is a 404 like a page past the end, a page
    size that is not one is a 400 naming it (DRF silently used the default size instead)."""

    django_paginator_class = AsciiPaginator

    def get_page_number(self, request, paginator):
        # DRF reads "?page=" as the first page; an empty page number is as invalid as "?page=x".
        page_number = request.query_params.get(self.page_query_param, 1)
        if page_number in self.last_page_strings:
            page_number = paginator.num_pages
        return page_number

    def get_page_size(self, request):
        name = self.page_size_query_param
        if not (name and name in request.query_params):
            return self.page_size
        value = request.query_params[name]
        try:
            size = ascii_int(value)
        except ValueError:
            # A size of more digits than ascii_int reads is still a whole number >= 1 (the schema's
            # "integer, minimum 1"): the largest page, as for any size above the maximum.
            size = self.max_page_size if self.max_page_size and is_ascii_digits(value) and value.strip("0") else 0
        if size < 1:
            raise ValidationError({name: ["A whole number of at least 1 is required."]})
        return min(size, self.max_page_size) if self.max_page_size else size

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] in (self.page_query_param, self.page_size_query_param):
                parameter["schema"] = {**parameter["schema"], "minimum": 1}
        return parameters
