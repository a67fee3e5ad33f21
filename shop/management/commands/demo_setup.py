"""`manage.py demo_setup [--data NAME] [--check]`: load the demo data (idempotent)."""
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from shop.demo import DEMO_DATASETS, DemoDataError, demo_data_resolve, demo_setup
from shop.management.base import operator_output


class Command(BaseCommand):
    help = ("Load demo data for `make demo` (a second run reuses what exists): generated, a named data set "
            "(--data) or DEMO_DATA=path. Exits 1 when no model could be trained.")

    def add_arguments(self, parser):
        parser.add_argument("--data", default="", metavar="NAME",
                            help=f"a real data set instead of generated data: {', '.join(DEMO_DATASETS)}")
        parser.add_argument("--check", action="store_true",
                            help="only check that the data set exists (make demo runs it before migrating)")

    def handle(self, *args, data, check, **options):
        try:
            dataset = demo_data_resolve(name=data, path=getattr(settings, "DEMO_DATA", ""))
        except DemoDataError as exc:
            raise CommandError(str(exc)) from None
        if check:
            return
        try:
            with operator_output(options["verbosity"]):
                summary = demo_setup(stdout=self.stdout, data=dataset)
        except (OSError, ValueError) as exc:  # DemoDataError included: its message says what to do
            message = str(exc) if isinstance(exc, DemoDataError) else f"demo setup failed: {exc}"
            raise CommandError(message) from None
        error = (summary.get("recommendations") or {}).get("error")
        if error:
            raise CommandError(f"the demo shop has no recommendations: training failed ({error}); run "
                               "manage.py train_model --activate -v 2 to see why")
