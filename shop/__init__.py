"""The shop project package: settings, root URLs, the Celery app and the storefront."""
from .celery import app as celery_app

__all__ = ("celery_app",)
