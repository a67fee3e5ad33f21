"""Cluster a model version's items and build its ANN index; prints the quality check."""
from django.core.management.base import BaseCommand, CommandError

from recommendations import selectors as rec_selectors

from ... import services


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
        mv = rec_selectors.model_version_get(opts["version"]) if opts["version"] else rec_selectors.model_version_active()
        if mv is None:
            raise CommandError("no such model version" if opts["version"] else "no active model version")
        if mv.kind != "gru4rec":
            raise CommandError(f"{mv.version} is a {mv.kind} model: it has no item embeddings to cluster")
        if opts["k"] is not None and opts["k"] < 1:
            raise CommandError("--k must be at least 1")
        log = self.stdout.write
        if opts["no_index"]:
            cl = services.clusters_build(mv, k=opts["k"], log=log)
        else:
            cl = services.version_extras_build(mv, k=opts["k"], log=log).clustering
        gap = cl.dominant_share - cl.random_share
        self.stdout.write(self.style.SUCCESS(
            f"{cl.k} clusters of {cl.n_items} items ({cl.n_products} catalogue products) for {mv.version}: "
            f"dominant category share {100 * cl.dominant_share:.1f}% vs {100 * cl.random_share:.1f}% "
            f"for random clusters of equal sizes ({100 * gap:+.1f} points)"))
