"""Cluster a model version's items and build its ANN index; prints the quality check."""
from django.core.management.base import BaseCommand, CommandError

from recommendations import selectors as rec_selectors
from recommendations.engine import ArtifactError

from ... import selectors, services


class Command(BaseCommand):
    help = "Cluster the items of a model version (default: the active one) and build its ANN index."

    def create_parser(self, prog_name, subcommand, **kwargs):
        # --version names the model version here (the interface), replacing Django's own flag.
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("--k", type=int, default=None, help="number of clusters (default: sqrt(n/2), 2..1000)")
        parser.add_argument("--version", default=None, help="model version name or id (default: the active one)")
        parser.add_argument("--no-index", action="store_true", help="clusters only, no ANN index")

    def handle(self, *args, **opts):
        # Arguments first: a bad --k fails before any database or model work.
        if opts["k"] is not None and opts["k"] < 1:
            raise CommandError(f"--k must be at least 1 (got {opts['k']}); leave it out for sqrt(n/2) clusters")
        if opts["version"]:
            mv = rec_selectors.model_version_get(opts["version"])
            if mv is None:
                names = selectors.embedding_versions(5)
                known = (f"the latest GRU4Rec versions are {', '.join(names)}" if names
                         else "there is no GRU4Rec version")
                raise CommandError(f"unknown model version {opts['version']!r}: {known} "
                                   "(or leave --version out for the active one)")
        else:
            mv = rec_selectors.model_version_active()
            if mv is None:
                raise CommandError("no active model version: train one (manage.py train_model --activate) "
                                   "or name one with --version")
        if mv.kind not in selectors.EMBEDDING_KINDS:
            raise CommandError(f"{mv.version} is a {mv.get_kind_display()} model, which has no item embeddings to "
                               "cluster: pass --version with a GRU4Rec version (every training run registers one)")
        log = self.stdout.write
        try:
            if opts["no_index"]:
                cl = services.clusters_build(mv, k=opts["k"], log=log)
            else:
                cl = services.version_extras_build(mv, k=opts["k"], log=log).clustering
        except ArtifactError as exc:
            raise CommandError(f"cannot load {mv.version}: {exc}") from None
        if not cl.n_categorised:
            quality = services.quality_text(cl)  # says why it was not measured
        else:
            gap = cl.dominant_share - cl.random_share
            quality = (f"dominant category share {100 * cl.dominant_share:.1f}% vs {100 * cl.random_share:.1f}% "
                       f"for random clusters of equal sizes ({100 * gap:+.1f} points)")
        self.stdout.write(self.style.SUCCESS(
            f"{cl.k} clusters of {cl.n_items} items ({cl.n_products} catalogue products) for {mv.version}: {quality}"))
