"""Error pages: the API answers JSON (as DRF does) even for URLs no view matched; the storefront HTML."""
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpResponsePermanentRedirect, JsonResponse
from django.urls import Resolver404, resolve
from django.views.decorators.csrf import csrf_exempt
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


@csrf_exempt  # it changes nothing; a CSRF refusal would answer HTML 403 instead of the JSON 404
def api_not_found(request, unmatched=""):
    """The last route under /api/: handler404 is not used in debug mode, where Django answers its HTML
    technical page, so unmatched API paths answer here, in every mode. A GET that only lacks its
    trailing slash is redirected, as CommonMiddleware's APPEND_SLASH would (this route matches first)."""
    if settings.APPEND_SLASH and request.method in ("GET", "HEAD") and not request.path_info.endswith("/"):
        try:
            match = resolve(request.path_info + "/")
        except Resolver404:
            match = None
        if match is not None and match.func is not api_not_found:
            return HttpResponsePermanentRedirect(request.get_full_path(force_append_slash=True))
    return JsonResponse({"detail": "Not found."}, status=404)


def server_error_page(request):
    if _is_api(request):
        return JsonResponse({"detail": "Internal server error.", "request_id": getattr(request, "request_id", None)},
                            status=500)
    return server_error(request)
