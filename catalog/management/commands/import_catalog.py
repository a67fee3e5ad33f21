"""`manage.py import_catalog FILE [--map id=product_id,...]`: import or update products from a CSV."""
from django.core.management.base import BaseCommand, CommandError

from catalog.services import DEFAULT_IMPORT_MAPPING, catalog_import_csv, import_mapping_parse
from shop.management.base import BAD_ROWS_SHOWN, operator_output, progress_wanted


class Command(BaseCommand):
    help = "Import products from a CSV (default mapping fits the REES46 event logs). Re-running changes nothing."

    def add_arguments(self, parser):
        default = ",".join(f"{k}={v}" for k, v in DEFAULT_IMPORT_MAPPING.items())
        parser.add_argument("file")
        parser.add_argument(
            "--map",
            dest="mapping",
            default="",
            help=f"FIELD=COLUMN pairs over the default {default}; fields: id,name,description,category,brand,price,"
            "currency; FIELD= unmaps one",
        )
        parser.add_argument("--currency", default="EUR", help="currency of new products without a currency column")
        parser.add_argument("--batch-size", type=int, default=5000)
        parser.add_argument("--no-progress", action="store_true", help="no progress bar (none unless on a terminal)")

    def handle(self, *args, file, mapping, currency, batch_size, no_progress, **options):
        try:
            with operator_output(options["verbosity"]):
                summary = catalog_import_csv(
                    file,
                    import_mapping_parse(mapping),
                    currency=currency,
                    batch_size=max(batch_size, 1),
                    progress=progress_wanted(no_progress),
                )
        except FileNotFoundError:
            raise CommandError(f"{file}: no such file; give the path of a product CSV (REES46 columns, or map "
                               "yours with --map)") from None
        except (OSError, ValueError) as exc:
            raise CommandError(str(exc)) from None
        if not summary.rows:
            raise CommandError(f"{file}: no data rows, nothing imported; is it the right file?")
        if not summary.products_seen:
            first = f" (first: line {summary.bad_rows[0][0]}: {summary.bad_rows[0][1]})" if summary.bad_rows else ""
            rows = "its only row is bad" if summary.rows == 1 else f"all {summary.rows:,} rows are bad"
            raise CommandError(f"{file}: {rows}{first}, nothing imported; check the file "
                               "or its --map")
        for line, reason in summary.bad_rows[:BAD_ROWS_SHOWN]:
            self.stderr.write(f"line {line}: {reason} (skipped)")
        if len(summary.bad_rows) > BAD_ROWS_SHOWN:
            self.stderr.write(f"... and {len(summary.bad_rows) - BAD_ROWS_SHOWN} more bad rows")
        self.stdout.write(
            f"{summary.rows} rows, {summary.products_seen} distinct products: {summary.created} created, "
            f"{summary.updated} updated, {summary.unchanged} unchanged; {summary.categories_created} categories "
            f"created; {len(summary.bad_rows)} bad rows skipped"
        )
