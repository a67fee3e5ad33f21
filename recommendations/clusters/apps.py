from django.apps import AppConfig


class ClustersConfig(AppConfig):
    name = "recommendations.clusters"
    label = "clusters"
    verbose_name = "Item clusters and retrieval"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # why: the core's modules and this app's services import models: only once apps are loaded
        from recommendations import ranking, registry, selectors, serving

        # why: as above; tasks too, so they are in Celery's registry in every process (queued by name)
        from . import services, tasks  # noqa: F401

        # The core never imports this app: it offers hooks, and the app registers itself here.
        serving.extra_loader_register("retrieval", services.retrieval_extras_load)
        ranking.candidate_source_register("ann", services.ann_candidates)
        ranking.diversifier_register(services.diversify_bundle)
        registry.activation_hook_register("clusters", services.activation_extras_queue)
        # looked up at call time, so a test that replaces services.popular_pool reaches the ranking
        selectors.popular_source_register(lambda *args, **kwargs: services.popular_pool(*args, **kwargs))
