"""`manage.py demo_setup`: load the demo data (idempotent)."""
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from shop.demo import demo_setup
from shop.management.base import operator_output


class Command(BaseCommand):
    help = "Load demo data for `make demo` (a second run reuses what exists). Exits 1 when no model could be trained."

    def handle(self, *args, **options):
        data = getattr(settings, "DEMO_DATA", "")
        if data and not Path(data).is_file():
            raise CommandError(f"DEMO_DATA={data}: no such file; point it at an event file or leave it unset for "
                               "generated sessions")
        try:
            with operator_output(options["verbosity"]):
                summary = demo_setup(stdout=self.stdout)
        except (OSError, ValueError) as exc:
            raise CommandError(f"demo setup failed: {exc}") from None
        error = (summary.get("recommendations") or {}).get("error")
        if error:
            raise CommandError(f"the demo shop has no recommendations: training failed ({error}); run "
                               "manage.py train_model --activate -v 2 to see why")
