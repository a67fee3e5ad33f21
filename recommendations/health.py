"""Health check: this process serves the version the database says is active (django-health-check v4).
It only reports: loading is the web worker's warm-up at start (``serving.warm_up`` from shop/wsgi.py)
and the reload timer's job, never a probe's."""
import dataclasses

from django.utils import timezone
from health_check.base import HealthCheck
from health_check.exceptions import ServiceUnavailable

from recommendations import serving


@dataclasses.dataclass
class ActiveModelLoaded(HealthCheck):
    """OK when this process serves the database's active version (or none is active: popular
    items answer), during the reload bound after an activation while it catches up, and during
    the same grace after the process started (its warm-up may still be loading); unavailable once
    it has served anything else for longer than that (an artifact it refused, a reload that
    cannot happen), so a load balancer takes it out instead of trusting it."""

    def run(self):
        # A fresh read of the registry row (not this process's memo of it): the check must see what
        # the database says even when this process's own reloading is what is broken.
        row = serving.active_row()
        wanted = row.version if row is not None else None
        loaded = serving.model_version_loaded()
        if loaded == wanted:
            return
        bound = serving.reload_bound_seconds()
        if serving.starting():
            return  # a process just started: its warm-up is loading the model
        behind = None
        if row is not None and row.activated_at is not None:
            behind = (timezone.now() - row.activated_at).total_seconds()
            if behind <= bound:
                return  # catching up, as every process may right after an activation
        refused = wanted in serving.model_version_refused()
        why = "its artifact was refused" if refused else "it could not be loaded"
        since = f" {behind:.0f} s after the activation" if behind is not None else ""
        raise ServiceUnavailable(
            f"the database's active model is {wanted or 'none'} but this process serves {loaded or 'none'} "
            f"({why}){since}; the reload bound is {bound:.0f} s"
        )
