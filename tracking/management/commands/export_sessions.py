"""manage.py export_sessions OUTDIR: write train.tsv/test.tsv for GRU4Rec from the recorded events."""
from datetime import datetime, time, timezone
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_date, parse_datetime

from shop.management.base import operator_output
from tracking.services import EVENT_TYPE_VALUES, HISTORY_EVENT_TYPES, sessions_export


def _moment(value: str | None):
    """The moment an option names, in UTC: the database never sees the given offset (PostgreSQL
    refuses offsets beyond +-15:59), and a value out of range is a usage error, not a traceback."""
    if not value:
        return None
    try:
        dt = parse_datetime(value)
        if dt is None:
            d = parse_date(value)
            if d is None:
                raise CommandError(f"not a date or ISO 8601 datetime: {value!r}")
            dt = datetime.combine(d, time.min)
        return (dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
    except (ValueError, OverflowError) as exc:
        raise CommandError(f"not a valid moment: {value!r} ({exc})") from exc


class Command(BaseCommand):
    help = "Export sessions for training (standard GRU4Rec preprocessing, last days as test)."

    def add_arguments(self, parser):
        parser.add_argument("outdir")
        parser.add_argument("--since", help="First moment to include (ISO date or datetime, UTC).")
        parser.add_argument("--until", help="Moment to stop before (ISO date or datetime, UTC).")
        parser.add_argument("--test-days", type=float, default=1.0)
        parser.add_argument(
            "--event-types", default=",".join(HISTORY_EVENT_TYPES), help="Comma-separated (default: view,click)."
        )

    def handle(self, *args, **options):
        types = tuple(t.strip() for t in options["event_types"].split(",") if t.strip())
        since, until = _moment(options["since"]), _moment(options["until"])
        try:
            with operator_output(options["verbosity"]):
                stats = sessions_export(
                    options["outdir"], since=since, until=until, test_days=options["test_days"], event_types=types,
                )
        except ValueError as exc:
            known = ", ".join(sorted(EVENT_TYPE_VALUES))
            raise CommandError(f"{exc}; --event-types takes a comma-separated list of {known}") from None
        except OSError as exc:
            raise CommandError(f"cannot write to {options['outdir']}: {exc.strerror or exc}") from None
        if not stats["train_events"]:
            # Empty files would only fail later, in training, with a less clear message.
            for name in ("train.tsv", "test.tsv"):
                (Path(stats["outdir"]) / name).unlink(missing_ok=True)
            window = f"from {since.isoformat() if since else 'the start'} to {until.isoformat() if until else 'now'}"
            if not stats["events_read"]:
                raise CommandError(f"nothing to export: no {','.join(types)} events {window}; widen --since/--until "
                                   "or --event-types, or import a click log first (manage.py import_events FILE)")
            raise CommandError(f"nothing to export: {stats['events_read']:,} events {window} but no session is left "
                               "for training after the standard preprocessing (short sessions and rare items are "
                               "dropped); widen --since/--until")
        self.stdout.write(
            f"wrote {stats['outdir']}/train.tsv and test.tsv from {stats['events_read']:,} events in "
            f"{stats['seconds']:.2f} s; train: {stats['train_events']:,} events, {stats['train_sessions']:,} sessions, "
            f"{stats['train_items']:,} items, {stats['train_span'][0]} .. {stats['train_span'][1]}; "
            f"test: {stats['test_events']:,} events, {stats['test_sessions']:,} sessions, "
            f"{stats['test_items']:,} items, {stats['test_span'][0]} .. {stats['test_span'][1]}"
        )
