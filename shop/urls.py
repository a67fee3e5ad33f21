"""Root URLs: storefront, admin, the REST API with its schema and docs, health."""
from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import APIRootView

from shop.errors import api_not_found
from shop.health import ShopHealthCheckView

# The browsable root lists every endpoint a client starts from (details are linked from these).
API_ROOT = {
    "products": "product-list", "categories": "category-list", "events": "tracking-events",
    "recommendations": "recommendations", "clusters": "cluster-list", "models": "model-list",
    "train": "model-train", "experiments": "experiment-list", "schema": "schema", "docs": "swagger-ui",
}

api_patterns = [
    path("", APIRootView.as_view(api_root_dict=API_ROOT), name="api-root"),
    path("", include("catalog.api.urls")),
    path("", include("tracking.api.urls")),
    path("", include("recommendations.api.urls")),
    path("", include("recommendations.clusters.api.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    re_path(r"^(?P<unmatched>.*)$", api_not_found),  # last: any other /api/ path is a JSON 404
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include(api_patterns)),
    path("health/", ShopHealthCheckView.as_view(), name="health"),
    path("taste/", include("recommendations.clusters.urls")),
    path("", include("shop.storefront.urls")),
]

handler400 = "shop.errors.bad_request_page"
handler404 = "shop.errors.not_found"
handler500 = "shop.errors.server_error_page"
