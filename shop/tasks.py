"""Small infrastructure tasks."""
import logging

from celery import shared_task

from shop.logging import get_request_id

logger = logging.getLogger(__name__)


@shared_task(name="shop.tasks.echo")
def echo(value):
    """Round-trip probe: returns its argument and the request id the task ran under."""
    logger.info("echo %r", value)
    return {"echo": value, "request_id": get_request_id()}
