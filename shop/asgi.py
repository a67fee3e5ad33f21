"""ASGI entry point. Refuses debug mode unless ALLOW_DEBUG_SERVER=true."""
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")
application = get_asgi_application()

from shop.debug_guard import debug_server_refuse  # noqa: E402 - needs the settings loaded above

debug_server_refuse()

from recommendations import serving  # noqa: E402 - needs the apps loaded above

# Load the active model before the first request (and before /health/ asks): the check only reports.
serving.warm_up()
