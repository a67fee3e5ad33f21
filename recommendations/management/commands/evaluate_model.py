"""Evaluate a model version on the held-out last day of the shop's events (or --data)."""
import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from recommendations import engine, training
from recommendations.management.base import model_version_or_fail
from shop.management.base import operator_output


class Command(BaseCommand):
    help = "Recall@K / MRR@K of VERSION on the held-out last day, beside popularity and item-kNN."

    def add_arguments(self, parser):
        parser.add_argument("version")
        parser.add_argument("--data", default="", help="event file instead of the shop's own events")

    def handle(self, *args, **opts):
        mv = model_version_or_fail(opts["version"])
        if opts["data"] and not Path(opts["data"]).is_file():
            raise CommandError(f"--data {opts['data']}: no such file; give an event file (YOOCHOOSE, GRU4Rec TSV, "
                               "REES46 CSV) or leave --data out for the shop's own events")
        try:
            with operator_output(opts["verbosity"]):
                out = training.model_version_evaluate(mv, opts["data"])
        except training.EvaluationRefused as exc:
            raise CommandError(str(exc)) from None
        except engine.ArtifactError as exc:
            raise CommandError(f"cannot load {mv.version}: {exc}") from None
        except (ValueError, OSError):  # the reader's own words (pandas') would not say what to do
            if opts["data"]:
                raise CommandError(f"--data {opts['data']}: not a readable event file (SessionId, ItemId, Time); "
                                   "check its format") from None
            raise CommandError("no events to evaluate on: the shop has no sessions to hold out; import a click log "
                               "(manage.py import_events FILE) or pass --data FILE") from None
        self.stdout.write(json.dumps(out, indent=2))
