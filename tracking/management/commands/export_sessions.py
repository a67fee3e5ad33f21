"""manage.py export_sessions OUTDIR: write train.tsv/test.tsv for GRU4Rec from the recorded events."""
from datetime import datetime, time, timezone

from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_date, parse_datetime

from tracking.services import HISTORY_EVENT_TYPES, sessions_export


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
        try:
            stats = sessions_export(
                options["outdir"], since=_moment(options["since"]), until=_moment(options["until"]),
                test_days=options["test_days"], event_types=types,
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"events read {stats['events_read']:,}\n"
            f"train: {stats['train_events']:,} events, {stats['train_sessions']:,} sessions, "
            f"{stats['train_items']:,} items, {stats['train_span'][0]} .. {stats['train_span'][1]}\n"
            f"test:  {stats['test_events']:,} events, {stats['test_sessions']:,} sessions, "
            f"{stats['test_items']:,} items, {stats['test_span'][0]} .. {stats['test_span'][1]}\n"
            f"wrote {stats['outdir']}/train.tsv and test.tsv in {stats['seconds']:.2f} s"
        )
