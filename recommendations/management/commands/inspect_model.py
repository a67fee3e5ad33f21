"""Show a model version: registry row, metrics beside the baselines, a check that it loads, and a few
items' nearest neighbours (GRU4Rec item embeddings)."""
import json

from django.core.management.base import BaseCommand, CommandError

from catalog.models import Product
from recommendations import artifacts, engine
from recommendations.management.base import model_version_or_fail
from shop.management.base import operator_output
from tracking.selectors import popular_products


class Command(BaseCommand):
    help = "Print a model version's registry data and verify its artifact (sha256 and engine load)."

    def add_arguments(self, parser):
        parser.add_argument("version")
        parser.add_argument("--items", default="", help="comma-separated item (external) ids whose neighbours to show "
                            "(default: the most popular items the model knows)")
        parser.add_argument("--neighbours", type=int, default=5, help="neighbours per item (0: none)")

    def handle(self, *args, **opts):
        self.verbosity = opts["verbosity"]
        if opts["neighbours"] < 0:
            raise CommandError(f"--neighbours must be 0 or more (got {opts['neighbours']})")
        mv = model_version_or_fail(opts["version"])
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
            model = artifacts.model_load(mv)
        except engine.ArtifactError as exc:
            raise CommandError(f"artifact refused: {exc}") from None
        if opts["neighbours"]:
            self._neighbours(mv, model, opts["items"], opts["neighbours"])
        w(self.style.SUCCESS(f"artifact OK: sha256 verified, loads with {len(model.item_ids)} items"))

    def _neighbours(self, mv, model, items: str, k: int) -> None:
        w = self.stdout.write
        if mv.kind == "hybrid":  # its GRU4Rec's item embeddings (V-SKNN has none)
            model = model.gru
        if not hasattr(model, "similar_items"):
            w(f"neighbours  none per item: {mv.kind} finds neighbours per session (the sessions most like the "
              "shopper's), not per item")
            return
        known = model.item_index
        if items:
            wanted = [i.strip() for i in items.split(",") if i.strip()]
            unknown = [i for i in wanted if i not in known]
            if unknown:
                raise CommandError(f"--items: {', '.join(unknown[:5])} not in {mv.version} (it knows "
                                   f"{len(model.item_ids):,} items, e.g. {', '.join(model.item_ids[:3])})")
        else:
            with operator_output(self.verbosity):
                wanted = [p.external_id for p in popular_products(20) if p.external_id in known][:3]
            wanted = wanted or list(model.item_ids[:3])
        pairs = {i: model.similar_items(i, k) for i in wanted}
        ids = set(wanted) | {j for near in pairs.values() for j, _ in near}
        names = dict(Product.objects.filter(external_id__in=ids).values_list("external_id", "name"))

        def label(i: str) -> str:
            return f"{names[i]} ({i})" if i in names else i

        w(f"neighbours by item embedding (cosine), {k} each:")
        for i, near in pairs.items():
            w(f"  {label(i)}")
            for j, sim in near:
                w(f"    {sim:6.3f}  {label(j)}")
