"""WSGI entry point (gunicorn shop.wsgi). Refuses debug mode unless ALLOW_DEBUG_SERVER=true."""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")
application = get_wsgi_application()

from shop.debug_guard import debug_server_refuse  # noqa: E402 - needs the settings loaded above

debug_server_refuse()

from recommendations import serving  # noqa: E402 - needs the apps loaded above

# Load the active model before the worker takes its first request (and before /health/ asks):
# the health check only reports, it never loads.
serving.warm_up()
