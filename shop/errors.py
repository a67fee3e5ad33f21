"""Error pages: the API answers JSON (as DRF does) even for URLs no view matched; the storefront HTML."""
from django.http import JsonResponse
from django.core.exceptions import RequestDataTooBig
from django.views.defaults import bad_request, page_not_found, server_error


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def bad_request_page(request, exception=None):
    if isinstance(exception, RequestDataTooBig):
        # Django raises this while reading a body above DATA_UPLOAD_MAX_MEMORY_SIZE.
        return JsonResponse({"detail": "Request body too large."}, status=413)
    if _is_api(request):
        return JsonResponse({"detail": "Bad request."}, status=400)
    return bad_request(request, exception)


def not_found(request, exception=None):
    if _is_api(request):
        return JsonResponse({"detail": "Not found."}, status=404)
    return page_not_found(request, exception)


def server_error_page(request):
    if _is_api(request):
        return JsonResponse({"detail": "Internal server error.", "request_id": getattr(request, "request_id", None)},
                            status=500)
    return server_error(request)
