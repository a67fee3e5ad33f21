"""Catalogue API routes, included at /api/ by shop.urls."""
from django.urls import include, path
from rest_framework.routers import SimpleRouter

from .views import CategoryViewSet, ProductViewSet

# SimpleRouter: the API root (/api/) is the project's, listing every app's endpoints (shop.urls).
router = SimpleRouter()
router.register("products", ProductViewSet, basename="product")
router.register("categories", CategoryViewSet, basename="category")

urlpatterns = [path("", include(router.urls))]
