"""Celery task: build a model version's clusters and ANN index (training queue, see settings)."""
from celery import shared_task
from django.conf import settings


@shared_task(name="recommendations.tasks.clusters_build", time_limit=settings.TRAINING_TASK_TIME_LIMIT,
             soft_time_limit=max(settings.TRAINING_TASK_TIME_LIMIT - 60, 60))
def clusters_build(model_version_id: int, k: int | None = None, missing_only: bool = False) -> dict:
    """Safe to run twice: a rebuild replaces the version's clusters and index (``missing_only``:
    keeps the parts that exist, as after an activation or a roll back)."""
    from .services import version_extras_build

    report = version_extras_build(model_version_id, k=k, missing_only=missing_only)
    return {
        "model_version": model_version_id,
        "clusters": report.clustering.k if report.clustering else 0,
        "index": report.index.index_type if report.index else None,
    }


@shared_task(name="recommendations.tasks.popular_pools_refresh")
def popular_pools_refresh() -> dict:
    """Precompute the popular products of every category for the cold paths (beat, after popularity)."""
    from .services import popular_pools_build

    pools = popular_pools_build()
    return {"categories": len(pools)}
