"""Helpers of the recommendations management commands (moved from shop.management.base: the project
package's shared helpers must not import an app, or every app's commands would import this one)."""
from django.core.management.base import CommandError

from recommendations import selectors
from recommendations.models import ModelVersion


def model_version_or_fail(name: str):
    """The model version named (or numbered) ``name``; a CommandError naming the latest ones otherwise."""
    mv = selectors.model_version_get(name)
    if mv is not None:
        return mv
    latest = list(ModelVersion.objects.order_by("-created", "-pk").values_list("version", flat=True)[:3])
    if not latest:
        raise CommandError(f"no model version {name!r}: none is registered yet; train one with "
                           "manage.py train_model")
    raise CommandError(f"no model version {name!r}: the latest are {', '.join(latest)} (a version name or id; "
                       "the admin's model versions page lists all)")
