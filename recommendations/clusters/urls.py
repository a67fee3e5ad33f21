from django.urls import path

from . import views

app_name = "clusters"
urlpatterns = [
    path("", views.taste_index, name="taste"),
    path("<int:cluster_id>/", views.taste_cluster, name="taste-cluster"),
]
