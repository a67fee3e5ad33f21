"""Recommendations API routes, included at /api/ by shop.urls."""
from django.urls import path
from rest_framework.routers import SimpleRouter

from . import experiment_views, views

router = SimpleRouter()
router.register("experiments", experiment_views.ExperimentViewSet, basename="experiment")

urlpatterns = [
    path("recommendations/", views.RecommendationView.as_view(), name="recommendations"),
    path("products/<int:pk>/similar/", views.SimilarItemsView.as_view(), name="product-similar"),
    path("models/", views.ModelVersionListView.as_view(), name="model-list"),
    path("models/<int:pk>/activate/", views.ModelVersionActivateView.as_view(), name="model-activate"),
    path("models/train/", views.ModelTrainView.as_view(), name="model-train"),
    path("training-runs/<int:pk>/", views.TrainingRunDetailView.as_view(), name="training-run-detail"),
] + router.urls
