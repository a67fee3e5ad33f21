"""Celery tasks: build a model version's clusters and ANN index (training queue, see settings),
refresh the popular pools. Thin: each calls one service and is safe to run twice."""
from celery import shared_task
from django.conf import settings

from . import services


@shared_task(name=services.CLUSTERS_BUILD_TASK, time_limit=settings.TRAINING_TASK_TIME_LIMIT,
             soft_time_limit=max(settings.TRAINING_TASK_TIME_LIMIT - 60, 60))
def clusters_build(model_version_id: int, k: int | None = None, missing_only: bool = False) -> dict:
    """Safe to run twice: a rebuild replaces the version's clusters and index (``missing_only``:
    keeps the parts that exist, as after an activation or a roll back)."""
    report = services.version_extras_build(model_version_id, k=k, missing_only=missing_only)
    return {
        "model_version": model_version_id,
        "clusters": report.clustering.k if report.clustering else 0,
        "index": report.index.index_type if report.index else None,
    }


@shared_task(name="recommendations.clusters.tasks.popular_pools_refresh")
def popular_pools_refresh() -> dict:
    """Precompute the popular products of every category for the cold paths (beat, after popularity)."""
    pools = services.popular_pools_build()
    return {"categories": len(pools)}
