"""Activate a model version (roll back = activate the previous one); every process follows within seconds."""
from django.core.management.base import BaseCommand, CommandError

from recommendations import registry
from recommendations.management.base import model_version_or_fail
from shop.management.base import operator_output


class Command(BaseCommand):
    help = "Activate VERSION (a version name or id); --rollback activates the previously active one."

    def add_arguments(self, parser):
        parser.add_argument("version", nargs="?")
        parser.add_argument("--rollback", action="store_true")

    def handle(self, *args, **opts):
        if opts["rollback"] and opts["version"]:
            raise CommandError("give a VERSION or --rollback, not both")
        if not opts["rollback"] and not opts["version"]:
            raise CommandError("give a VERSION to activate, or --rollback for the one active before")
        try:
            with operator_output(opts["verbosity"]):
                if opts["rollback"]:
                    mv = registry.model_rollback()
                else:
                    mv = registry.model_activate(model_version_or_fail(opts["version"]))
        except registry.ActivationRefused as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(self.style.SUCCESS(f"active: {mv.version} ({mv.kind}, {mv.n_items} items)"))
