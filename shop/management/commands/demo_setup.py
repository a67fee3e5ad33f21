"""`manage.py demo_setup`: load the demo data (idempotent)."""
from django.core.management.base import BaseCommand

from shop.demo import demo_setup


class Command(BaseCommand):
    help = "Load demo data for `make demo` (a second run reuses what exists)."

    def handle(self, *args, **options):
        demo_setup(stdout=self.stdout)
