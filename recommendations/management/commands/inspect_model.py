"""Show a model version: registry row, metrics beside the baselines, and a check that it loads."""
import json

from django.core.management.base import BaseCommand, CommandError

from recommendations import engine, selectors
from recommendations.serving import artifact_path


class Command(BaseCommand):
    help = "Print a model version's registry data and verify its artifact (sha256 and engine load)."

    def add_arguments(self, parser):
        parser.add_argument("version")

    def handle(self, *args, **opts):
        mv = selectors.model_version_get(opts["version"])
        if mv is None:
            raise CommandError(f"no model version {opts['version']!r}")
        w = self.stdout.write
        w(f"version   {mv.version} ({mv.kind}, {mv.status})")
        w(f"artifact  {mv.artifact} ({mv.artifact_size} bytes, sha256 {mv.artifact_sha256})")
        w(f"items     {mv.n_items}")
        w(f"trained   {mv.train_start} .. {mv.train_end}; held out {mv.test_start} .. {mv.test_end}")
        w(f"created   {mv.created}; activated {mv.activated_at or '-'} by {mv.activated_by or '-'}")
        w(f"params    {json.dumps(mv.parameters)}")
        rows = [("this model", (mv.metrics or {}).get("model") or {})]
        rows += [(f"baseline {k}", v) for k, v in ((mv.metrics or {}).get("baselines") or {}).items()]
        rows += [(f"other {k}", v) for k, v in ((mv.metrics or {}).get("others") or {}).items()]
        active = (mv.metrics or {}).get("active")
        if active:
            rows.append((f"active then ({active['version']})", active["metrics"]))
        names = [f"{m}@{c}" for c in engine.CUTOFFS for m in ("recall", "mrr")]
        w("metrics   " + "".join(f"{n:>11}" for n in names))
        for label, m in rows:
            w(f"  {label:<28}" + "".join(f"{float(m.get(n, 0)):>11.4f}" for n in names))
        try:
            model = engine.artifact_load(mv.kind, artifact_path(mv), mv.artifact_sha256)
        except engine.ArtifactError as exc:
            raise CommandError(f"artifact refused: {exc}") from None
        w(self.style.SUCCESS(f"artifact OK: sha256 verified, loads with {len(model.item_ids)} items"))
