"""Moving the test database between migrations, for the tests of data migrations."""
from django.db import connection
from django.db.migrations.executor import MigrationExecutor


def migrate(targets=None):
    """Migrate to ``targets`` (None: every app's latest migration) and return that state's apps.
    Going back in one app also unapplies other apps' migrations that depend on it, so a test that
    goes back must come back with ``migrate()``, not to its own app's latest only."""
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    targets = executor.loader.graph.leaf_nodes() if targets is None else targets
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps
