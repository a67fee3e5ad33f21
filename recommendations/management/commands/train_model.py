"""Train in the foreground: the same pipeline as the Celery task, with a progress bar on a terminal."""
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from recommendations import training
from recommendations.gru4rec.params import parse_params
from recommendations.models import TrainingRun
from shop.management.base import operator_output, progress_wanted


class Command(BaseCommand):
    help = "Export the shop's sessions (or read --data), train GRU4Rec and V-SKNN, evaluate, register."

    def add_arguments(self, parser):
        parser.add_argument("--params", default="", help="GRU4Rec parameter string (default: the shop's tuned training "
                            "settings, else MODEL_TRAIN_PARAMS)")
        parser.add_argument("--activate", action="store_true",
                            help="activate the better model if it is at least as good as the active one")
        parser.add_argument("--data", default="", help="train from this event file instead of the shop's events")
        parser.add_argument("--no-progress", action="store_true",
                            help="no epoch progress bar (none unless on a terminal)")

    def handle(self, *args, **opts):
        try:
            if opts["params"]:
                parse_params(opts["params"])
        except ValueError as exc:
            raise CommandError(f"--params: {exc}") from None
        if opts["data"] and not Path(opts["data"]).is_file():
            raise CommandError(f"--data {opts['data']}: no such file; give an event file (YOOCHOOSE, GRU4Rec TSV, "
                               "REES46 CSV) or leave --data out to train on the shop's own events")
        # Each stage line once: the command echoes it on stdout; the training log, which repeated every
        # line on stderr through the console handler, is held back below -v 2 (the run keeps its log).
        echo = (lambda line: self.stdout.write(line)) if opts["verbosity"] >= 1 else None
        with operator_output(opts["verbosity"]):
            run = training.training_run_now(params=opts["params"] or None, activate=opts["activate"], data_path=opts["data"],
                                            progress=progress_wanted(opts["no_progress"]), echo=echo)
        if run.status != TrainingRun.Status.SUCCEEDED:
            raise CommandError(f"training run {run.pk} failed: {run.error} (the run's log is in the admin)")
        r = run.result
        self.stdout.write(self.style.SUCCESS(
            f"run {run.pk}: versions {', '.join(r['versions'].values())}; best {r['best']}; "
            f"{'activated' if r['activated'] else 'not activated'} ({r['decision']})"
        ))
