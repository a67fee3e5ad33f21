"""manage.py import_events FILE: import a real click log (YOOCHOOSE, GRU4Rec TSV, REES46) into visits and events."""
import sys

from django.core.management.base import BaseCommand, CommandError

from tracking.importers import FORMATS, ImportFormatError
from tracking.services import events_import


class Command(BaseCommand):
    help = "Import a click log into visits and events. Bad rows are reported and skipped; re-imports add nothing."

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--format", default="auto", choices=FORMATS + ("auto",))
        parser.add_argument("--strict", action="store_true", help="Write nothing and fail if any row is bad.")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")
        parser.add_argument(
            "--no-ledger", action="store_true",
            help="Check every row against the events even in blocks the import ledger records as imported.",
        )

    def handle(self, *args, **options):
        try:
            stats = events_import(
                options["file"], options["format"], strict=options["strict"],
                progress=not options["no_progress"] and sys.stderr.isatty(), ledger=not options["no_ledger"],
            )
        except (ImportFormatError, OSError) as exc:
            raise CommandError(str(exc)) from exc
        for error in stats.errors:
            self.stderr.write(f"  skipped {error}")
        if stats.skipped > len(stats.errors):
            self.stderr.write(f"  ... {stats.skipped - len(stats.errors)} more bad rows")
        d = stats.as_dict()
        self.stdout.write(
            f"{d['path']} ({d['format']}): rows read {d['rows_read']:,}, imported {d['imported']:,}, "
            f"skipped {d['skipped']:,}, duplicates {d['duplicates']:,}, sessions {d['sessions']:,} "
            f"({d['visits_created']:,} new), products created {d['products_created']:,}, "
            f"{d['seconds']:.2f} s, {d['events_per_second']:,} events/s"
        )
        if options["verbosity"] >= 2:
            self.stdout.write("  seconds by stage: " + ", ".join(f"{k} {v:.2f}" for k, v in d["timings"].items()))
        if stats.strict_failed:
            raise CommandError(f"--strict: {stats.skipped} bad rows, nothing imported")
