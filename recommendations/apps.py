from django.apps import AppConfig


class RecommendationsConfig(AppConfig):
    name = "recommendations"
    verbose_name = "Recommendations"

    def ready(self):
        # The tasks must be in Celery's registry in every process: training publishes them by name.
        # why: tasks imports training and models, which need the app registry loaded
        from . import tasks  # noqa: F401
