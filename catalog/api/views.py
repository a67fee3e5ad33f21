"""Products and categories API: read-only, paginated, filtered, cached per query."""
import hashlib

from django.core.cache import cache
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import viewsets
from rest_framework.response import Response

from catalog import cache as catalog_cache
from catalog import selectors
from catalog.models import Category

from .filters import ProductFilter
from .pagination import ProductPagination
from .serializers import CategorySerializer, ProductDetailSerializer, ProductSerializer


@extend_schema_view(
    list=extend_schema(
        summary="List active products",
        description="Page-number pagination (`page`, `page_size` up to 100; larger values are clamped). "
        "`count` may come from a cache. A page past the end or a non-numeric page gives 404; "
        "an unknown category or ordering, or a page size that is not a whole number from 1, gives 400.",
        responses={
            200: ProductSerializer(many=True),
            400: OpenApiResponse(description="Invalid filter value"),
            404: OpenApiResponse(description="Invalid page"),
        },
    ),
    retrieve=extend_schema(summary="One active product", responses={200: ProductDetailSerializer}),
)
class ProductViewSet(viewsets.ReadOnlyModelViewSet):
    pagination_class = ProductPagination
    filterset_class = ProductFilter

    def get_queryset(self):
        return selectors.product_list()

    def get_serializer_class(self):
        return ProductDetailSerializer if self.action == "retrieve" else ProductSerializer

    def list(self, request, *args, **kwargs):
        # Whole responses cached per validated query; the catalogue version in the key invalidates them
        # all when a product changes (catalog.services.catalog_cache_invalidate).
        key = self._list_cache_key(request)
        data = cache.get(key) if key else None
        if data is not None:
            return Response(data)
        response = super().list(request, *args, **kwargs)
        if response.status_code == 200 and key:
            cache.set(key, response.data, catalog_cache.cache_seconds())
        return response

    def _list_cache_key(self, request) -> str | None:
        """The key of a list response, from the parameters as the filters and the paginator read them:
        unknown parameters and other spellings of one query share one entry (junk query strings
        made a new entry each). None for a query that is not valid (its 400/404 is not cached)."""
        filterset = self.filterset_class(request.query_params, queryset=self.get_queryset(), request=request)
        if not filterset.is_valid():
            return None
        data = filterset.form.cleaned_data
        # Absent is the first page; an empty ?page= is not (the paginator answers it 404), so it must
        # not find the first page's entry.
        page = request.query_params.get(self.paginator.page_query_param, "1")
        if page not in self.paginator.last_page_strings:
            if not (page.isascii() and page.isdigit()):
                return None  # not a page number the paginator takes: a 404, not cached
            page = int(page)
        category = data.get("category")
        search = hashlib.sha1((data.get("search") or "").encode()).hexdigest() if data.get("search") else ""
        return catalog_cache.key("api-products", request.scheme, request.get_host(), category.id if category else "",
                                 data.get("ordering") or "", self.paginator.get_page_size(request), page, search)


@extend_schema_view(
    list=extend_schema(summary="All categories (a small tree, not paginated)"),
    retrieve=extend_schema(summary="One category"),
)
class CategoryViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = CategorySerializer
    pagination_class = None
    queryset = Category.objects.order_by("slug")
