"""OpenAPI post-processing: document the error answers every operation can give.

DRF answers 400 (validation), 401/403 (authentication, permissions), 404 (unknown object),
405, 413 (body too large) and 429 (throttled) from shared machinery rather than from each view,
so drf-spectacular does not see them. This hook adds them, with DRF's error body shape, to every
operation that can produce them, so that clients (and schemathesis) know what to expect.
"""

ERROR_SCHEMA = {
    "type": "object",
    "description": "DRF error body: `detail` for request-level errors, field names for validation errors.",
    "additionalProperties": True,
}


def _error(description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": ERROR_SCHEMA}}}


def add_error_responses(result, generator, request, public):
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if method.startswith("x-") or not isinstance(operation, dict):
                continue
            responses = operation.setdefault("responses", {})
            has_input = bool(operation.get("parameters")) or "requestBody" in operation
            if has_input or method in ("post", "put", "patch"):
                responses.setdefault("400", _error("Invalid input: field errors or a malformed body."))
            if "{" in path:
                responses.setdefault("404", _error("No such object."))
            if operation.get("security") is not None or method != "get":
                responses.setdefault("401", _error("Authentication credentials were not provided or are invalid."))
                responses.setdefault("403", _error("Not allowed (staff permission or CSRF token missing)."))
            if "requestBody" in operation:
                responses.setdefault("413", _error("Request body too large."))
                responses.setdefault("415", _error("Unsupported media type."))
            responses.setdefault("429", _error("Too many requests: throttled."))
    return result
