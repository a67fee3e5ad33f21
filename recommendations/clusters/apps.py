from django.apps import AppConfig


class ClustersConfig(AppConfig):
    name = "recommendations.clusters"
    label = "clusters"
    verbose_name = "Item clusters and retrieval"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Load each model version's ANN index and clusters together with the model (hot reload).
        from recommendations import serving

        from .services import retrieval_extras_load

        register = getattr(serving, "extra_loader_register", None)
        if register is not None:
            register("retrieval", retrieval_extras_load)
