"""Celery tasks of the tracking app: thin wrappers around services."""
from celery import shared_task

from . import services


@shared_task(name="tracking.tasks.popularity_refresh", ignore_result=True)
def popularity_refresh() -> int:
    # Recomputes the whole table from the events, so running it twice (or late) is harmless.
    return services.popularity_refresh()
