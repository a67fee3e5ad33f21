"""Evaluate a model version on the held-out last day of the shop's events (or --data)."""
import json

from django.core.management.base import BaseCommand, CommandError

from recommendations import engine
from recommendations.models import TrainingRun
from recommendations.serving import artifact_path
from recommendations.training import events_for_run
from shop.management.base import model_version_or_fail, operator_output


class Command(BaseCommand):
    help = "Recall@K / MRR@K of VERSION on the held-out last day, beside popularity and item-kNN."

    def add_arguments(self, parser):
        parser.add_argument("version")
        parser.add_argument("--data", default="", help="event file instead of the shop's own events")

    def handle(self, *args, **opts):
        import tempfile
        from pathlib import Path

        mv = model_version_or_fail(opts["version"])
        if opts["data"] and not Path(opts["data"]).is_file():
            raise CommandError(f"--data {opts['data']}: no such file; give an event file (YOOCHOOSE, GRU4Rec TSV, "
                               "REES46 CSV) or leave --data out for the shop's own events")
        try:
            model = engine.artifact_load(mv.kind, artifact_path(mv), mv.artifact_sha256)
        except engine.ArtifactError as exc:
            raise CommandError(f"cannot load {mv.version}: {exc}") from None
        try:
            with operator_output(opts["verbosity"]), tempfile.TemporaryDirectory() as tmp:
                train, test, stats = events_for_run(TrainingRun(data_path=opts["data"]), Path(tmp))
        except (ValueError, OSError):  # the reader's own words (pandas') would not say what to do
            if opts["data"]:
                raise CommandError(f"--data {opts['data']}: not a readable event file (SessionId, ItemId, Time); "
                                   "check its format") from None
            raise CommandError("no events to evaluate on: the shop has no sessions to hold out; import a click log "
                               "(manage.py import_events FILE) or pass --data FILE") from None
        if not stats["test"].get("events"):
            raise CommandError("no held-out data to evaluate on: the last day has no events; import events or "
                               "pass --data FILE")
        out = {"version": mv.version, "held_out": stats["test"], mv.kind: engine.evaluate(mv.kind, model, test)}
        for b in ("popularity", "itemknn"):
            out[b] = engine.evaluate(b, engine.baseline_train(b, train), test)
        self.stdout.write(json.dumps(out, indent=2))
