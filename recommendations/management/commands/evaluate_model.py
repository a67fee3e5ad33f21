"""Evaluate a model version on the held-out last day of the shop's events (or --data)."""
import json

from django.core.management.base import BaseCommand, CommandError

from recommendations import engine, selectors
from recommendations.models import TrainingRun
from recommendations.serving import artifact_path
from recommendations.training import events_for_run


class Command(BaseCommand):
    help = "Recall@K / MRR@K of VERSION on the held-out last day, beside popularity and item-kNN."

    def add_arguments(self, parser):
        parser.add_argument("version")
        parser.add_argument("--data", default="", help="event file instead of the shop's own events")

    def handle(self, *args, **opts):
        import tempfile
        from pathlib import Path

        mv = selectors.model_version_get(opts["version"])
        if mv is None:
            raise CommandError(f"no model version {opts['version']!r}")
        try:
            model = engine.artifact_load(mv.kind, artifact_path(mv), mv.artifact_sha256)
        except engine.ArtifactError as exc:
            raise CommandError(str(exc)) from None
        with tempfile.TemporaryDirectory() as tmp:
            train, test, stats = events_for_run(TrainingRun(data_path=opts["data"]), Path(tmp))
        out = {"version": mv.version, "held_out": stats["test"], mv.kind: engine.evaluate(mv.kind, model, test)}
        for b in ("popularity", "itemknn"):
            out[b] = engine.evaluate(b, engine.baseline_train(b, train), test)
        self.stdout.write(json.dumps(out, indent=2))
