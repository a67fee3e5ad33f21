"""manage.py import_events FILE: import a real click log (YOOCHOOSE, GRU4Rec TSV, REES46) into visits and events."""
from django.core.management.base import BaseCommand, CommandError

from shop.management.base import BAD_ROWS_SHOWN, operator_output, progress_wanted
from tracking.importers import FORMATS, ImportFormatError
from tracking.services import events_import


def _all_bad(n: int) -> str:
    return "its only row is bad" if n == 1 else f"all {n:,} rows are bad"


class Command(BaseCommand):
    help = ("Import a click log into visits and events. Bad rows are reported and skipped; re-imports add nothing. "
            "Exits 1 when no row of the file is usable.")

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--format", default="auto", choices=FORMATS + ("auto",))
        parser.add_argument("--strict", action="store_true", help="Write nothing and fail if any row is bad.")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar (none unless on a terminal).")
        parser.add_argument(
            "--no-ledger", action="store_true",
            help="Check every row against the events even in blocks the import ledger records as imported.",
        )

    def handle(self, *args, **options):
        path = options["file"]
        try:
            with operator_output(options["verbosity"]):
                stats = events_import(
                    path, options["format"], strict=options["strict"],
                    progress=progress_wanted(options["no_progress"]), ledger=not options["no_ledger"],
                )
        except FileNotFoundError:
            raise CommandError(f"{path}: no such file; give the path of a click log (YOOCHOOSE, GRU4Rec TSV "
                               "or REES46 CSV)") from None
        except (ImportFormatError, OSError) as exc:
            raise CommandError(f"{path}: {exc}") from None
        if stats.strict_failed:  # the bad lines are what the operator must fix: list them, then fail
            self._bad_rows(stats)
            raise CommandError(f"--strict: {stats.skipped:,} bad rows, nothing imported; fix them or "
                               "leave out --strict to skip them")
        if stats.rows_read == 0:
            raise CommandError(f"{path}: no data rows, nothing imported; is it the right file?")
        if stats.imported == 0 and stats.duplicates == 0:
            first = f" (first: {stats.errors[0]})" if stats.errors else ""
            raise CommandError(
                f"{path}: {_all_bad(stats.skipped)}{first}, nothing imported; check the file "
                f"(read as {stats.format}: pass --format if that is wrong)"
            )
        self._bad_rows(stats)
        d = stats.as_dict()
        self.stdout.write(
            f"{d['path']} ({d['format']}): rows read {d['rows_read']:,}, imported {d['imported']:,}, "
            f"skipped {d['skipped']:,}, duplicates {d['duplicates']:,}, sessions {d['sessions']:,} "
            f"({d['visits_created']:,} new), products created {d['products_created']:,}, "
            f"{d['seconds']:.2f} s, {d['events_per_second']:,} events/s"
        )
        if options["verbosity"] >= 2:
            self.stdout.write("  seconds by stage: " + ", ".join(f"{k} {v:.2f}" for k, v in d["timings"].items()))

    def _bad_rows(self, stats) -> None:
        shown = stats.errors[:BAD_ROWS_SHOWN]
        for error in shown:
            self.stderr.write(f"skipped {error}")
        if stats.skipped > len(shown):
            self.stderr.write(f"... and {stats.skipped - len(shown):,} more bad rows")
