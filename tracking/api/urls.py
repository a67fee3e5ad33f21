"""Tracking API routes (included under /api/)."""
from django.urls import path

from .views import EventBatchView, SessionHistoryView

urlpatterns = [
    path("events/", EventBatchView.as_view(), name="tracking-events"),
    path("sessions/<uuid:session>/history/", SessionHistoryView.as_view(), name="tracking-session-history"),
]
