"""Celery tasks of the tracking app: thin wrappers around services."""
from celery import shared_task

from . import services


@shared_task(name="tracking.tasks.popularity_refresh", ignore_result=True)
def popularity_refresh() -> int:
    # Recomputes the whole table from the events, so running it twice (or late) is harmless.
    return services.popularity_refresh()


@shared_task(name="tracking.tasks.event_batch_keys_expire", ignore_result=True)
def event_batch_keys_expire() -> int:
    # Deletes only keys past their lifetime (which replay nothing any more): safe to run twice.
    return services.event_batch_keys_expire()
