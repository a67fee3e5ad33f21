"""Health checks (django-health-check v4): database, cache, Celery when a broker is set, the model."""
from django.conf import settings
from health_check.views import HealthCheckView


def health_checks() -> list:
    checks: list = ["health_check.checks.Database", "health_check.checks.Cache"]
    if settings.HEALTH_CHECK_CELERY:
        checks.append("health_check.contrib.celery.Ping")
    checks.extend(getattr(settings, "HEALTH_CHECK_EXTRA", []))
    return checks


class ShopHealthCheckView(HealthCheckView):
    def get_checks(self):
        self.checks = health_checks()
        return super().get_checks()
