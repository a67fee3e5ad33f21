"""Request ids: one per HTTP request, carried into the Celery tasks it queues and into every log line."""
import contextvars
import logging
import time
import uuid

from shop.client_ip import client_ip

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
request_logger = logging.getLogger("shop.request")


def get_request_id() -> str | None:
    return _request_id.get()


def set_request_id(value: str | None) -> None:
    _request_id.set(value)


class RequestIdFilter(logging.Filter):
    """Adds ``record.request_id`` ("-" outside a request or task)."""

    def filter(self, record):
        record.request_id = _request_id.get() or "-"
        return True


class RequestIdMiddleware:
    """Assigns a request id (or accepts a sane ``X-Request-ID``), echoes it, logs one line per request."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        rid = incoming if incoming and len(incoming) <= 64 and incoming.replace("-", "").isalnum() else uuid.uuid4().hex
        token = _request_id.set(rid)
        request.request_id = rid
        start = time.perf_counter()
        status = 500
        try:
            response = self.get_response(request)
            status = response.status_code
            response["X-Request-ID"] = rid
            return response
        finally:
            request_logger.info(
                "%s %s %s %.1fms client=%s",
                request.method,
                request.get_full_path()[:200],
                status,
                (time.perf_counter() - start) * 1000,
                client_ip(request) or "-",  # as TRUSTED_PROXIES says, never a header taken on trust
            )
            _request_id.reset(token)
