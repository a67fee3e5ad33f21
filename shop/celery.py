"""The Celery application, configured from Django settings (namespace ``CELERY``)."""
import os

from celery import Celery
from celery.signals import before_task_publish, task_postrun, task_prerun

from shop.logging import get_request_id, set_request_id

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")

app = Celery("shop")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@before_task_publish.connect
def _propagate_request_id(headers=None, **kwargs):
    # The request id of the web request that queued the task travels in the task headers,
    # so the worker's log lines carry the same id.
    if headers is not None and "request_id" not in headers:
        headers["request_id"] = get_request_id()


@task_prerun.connect
def _bind_request_id(task=None, **kwargs):
    rid = getattr(task.request, "request_id", None) if task else None
    set_request_id(rid or f"task-{task.request.id}" if task else None)


@task_postrun.connect
def _unbind_request_id(**kwargs):
    set_request_id(None)
