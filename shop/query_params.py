"""The API reads each query parameter once: a repeated one is a 400 naming it.

Django's QueryDict answers ``get()`` with the last of repeated values, so ``?page=x&page=2`` was
read as page 2 and ``?k=abc&k=6`` as 6: a request with an invalid value went through, and which
value counted depended on the order a client or a proxy put them in. No API operation takes a list
in its query string (the schema documents none), so the ambiguity is refused for every /api/ path.
"""
from django.http import JsonResponse


class SingleQueryValuesMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info.startswith("/api/"):
            repeated = [name for name, values in request.GET.lists() if len(values) > 1]
            if repeated:
                return JsonResponse({name: ["Give this parameter once."] for name in repeated}, status=400)
        return self.get_response(request)
