"""Activate a model version (roll back = activate the previous one); every process follows within seconds."""
from django.core.management.base import BaseCommand, CommandError

from recommendations import selectors, services


class Command(BaseCommand):
    help = "Activate VERSION (a version name or id); --rollback activates the previously active one."

    def add_arguments(self, parser):
        parser.add_argument("version", nargs="?")
        parser.add_argument("--rollback", action="store_true")

    def handle(self, *args, **opts):
        try:
            if opts["rollback"]:
                mv = services.model_rollback()
            else:
                if not opts["version"]:
                    raise CommandError("give a VERSION or --rollback")
                mv = selectors.model_version_get(opts["version"])
                if mv is None:
                    raise CommandError(f"no model version {opts['version']!r}")
                mv = services.model_activate(mv)
        except services.ActivationRefused as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(self.style.SUCCESS(f"active: {mv.version} ({mv.kind}, {mv.n_items} items)"))
