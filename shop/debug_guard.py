"""A server process never serves debug mode by accident: Django's debug 500 page shows settings,
database hosts and broker URLs to whoever triggers an error. shop/wsgi.py and shop/asgi.py call
``debug_server_refuse`` once the settings are loaded."""
from __future__ import annotations

import sys
from pathlib import Path

MESSAGE = (
    "Refusing to serve with DEBUG on (DJANGO_DEBUG is unset or true): a debug error page shows "
    "settings, hosts and URLs to anyone. Set DJANGO_DEBUG=false with SECRET_KEY and ALLOWED_HOSTS for "
    "a real server (scripts/serve.sh does), or ALLOW_DEBUG_SERVER=true to serve debug mode on purpose. "
    "`manage.py runserver` (make demo) is not affected."
)


def _runserver() -> bool:
    """Django's development server loads the WSGI application too; it is meant for debug mode."""
    argv = sys.argv
    return len(argv) > 1 and argv[1] == "runserver" and Path(argv[0]).name in ("manage.py", "django-admin")


def debug_server_refuse() -> None:
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    if settings.DEBUG and not getattr(settings, "ALLOW_DEBUG_SERVER", False) and not _runserver():
        raise ImproperlyConfigured(MESSAGE)
