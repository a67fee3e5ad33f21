"""Train in the foreground: the same pipeline as the Celery task, with a progress bar."""
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from recommendations.models import TrainingRun
from recommendations.services import training_run_execute


class Command(BaseCommand):
    help = "Export the shop's sessions (or read --data), train GRU4Rec and V-SKNN, evaluate, register."

    def add_arguments(self, parser):
        parser.add_argument("--params", default=settings.MODEL_TRAIN_PARAMS, help="GRU4Rec parameter string")
        parser.add_argument("--activate", action="store_true",
                            help="activate the better model if it is at least as good as the active one")
        parser.add_argument("--data", default="", help="train from this event file instead of the shop's events")

    def handle(self, *args, **opts):
        from recommendations.gru4rec.params import parse_params

        try:
            parse_params(opts["params"])
        except ValueError as exc:
            raise CommandError(f"--params: {exc}") from None
        run = TrainingRun.objects.create(params=opts["params"], activate=opts["activate"], data_path=opts["data"])
        from recommendations.training import run_execute

        run = run_execute(run.pk, progress=True, echo=lambda line: self.stdout.write(line))
        if run.status != TrainingRun.Status.SUCCEEDED:
            raise CommandError(f"training run {run.pk} failed: {run.error}")
        r = run.result
        self.stdout.write(self.style.SUCCESS(
            f"run {run.pk}: versions {', '.join(r['versions'].values())}; best {r['best']}; "
            f"{'activated' if r['activated'] else 'not activated'} ({r['decision']})"
        ))
