from django.apps import AppConfig


class RecommendationsConfig(AppConfig):
    name = "recommendations"
    verbose_name = "Recommendations"

    def ready(self):
        # why: the tasks must be in Celery's registry in every process (training publishes by task
        # name), and a module that defines Celery tasks reads settings, so it loads once apps are ready.
        from . import tasks  # noqa: F401
