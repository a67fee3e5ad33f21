from catalog.tests.fixtures import clean_cache, tracked  # noqa: F401
