"""Orders placed through the storefront."""
from django.db import models  # noqa: F401
