"""Health check: the active model version is loaded in this process (django-health-check v4)."""
import dataclasses

from health_check.base import HealthCheck
from health_check.exceptions import ServiceUnavailable, ServiceWarning


@dataclasses.dataclass
class ActiveModelLoaded(HealthCheck):
    """OK when this process serves the active version (or none is active: popular items answer);
    a warning while an older version serves because the active one was refused; unavailable
    when a version is active but nothing is loaded."""

    def run(self):
        from recommendations.serving import model_reload, model_version_loaded, model_version_refused

        bundle = model_reload(force=False) if model_version_loaded() else model_reload(force=True)
        from recommendations.serving import active_version

        wanted = active_version()
        if wanted is None:
            return
        loaded = bundle.version if bundle else None
        if loaded == wanted:
            return
        refused = wanted in model_version_refused()
        why = "its artifact was refused" if refused else "not loaded yet"
        if loaded is None:
            raise ServiceUnavailable(f"active model {wanted} is not loaded ({why})")
        raise ServiceWarning(f"active model {wanted} is not loaded ({why}); still serving {loaded}")
