from django.urls import path

from . import views

urlpatterns = [
    path("clusters/", views.ClusterListView.as_view(), name="cluster-list"),
    path("clusters/<int:cluster_id>/", views.ClusterDetailView.as_view(), name="cluster-detail"),
]
