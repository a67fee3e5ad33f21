"""Admin: clusterings with their quality figure, clusters with sizes and sample products."""
from django.contrib import admin, messages
from django.utils.html import format_html_join

from . import selectors, services
from .models import ItemCluster, ItemClustering, RetrievalIndex


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(ItemClustering)
class ItemClusteringAdmin(ReadOnlyAdmin):
    list_display = ["model_version", "k", "n_items", "n_products", "n_categorised", "quality", "seconds", "created"]
    readonly_fields = ["quality"]  # the view page shows the reason too, beside the raw shares
    actions = ["rebuild"]

    @admin.display(description="dominant category share (random clusters)", ordering="dominant_share")
    def quality(self, obj):
        # Without categorised items both shares are 0 by construction: say so instead of "0.0%".
        if not obj.n_categorised:
            return "- (not measured: the catalogue has no categories for these items)"
        return f"{100 * obj.dominant_share:.1f}% ({100 * obj.random_share:.1f}%)"

    @admin.action(description="Rebuild clusters and ANN index of the selected versions")
    def rebuild(self, request, queryset):
        for clustering in queryset.select_related("model_version"):
            services.version_extras_queue(clustering.model_version, k=clustering.k)
        self.message_user(request, f"{queryset.count()} rebuild(s) queued", messages.SUCCESS)


@admin.register(ItemCluster)
class ItemClusterAdmin(ReadOnlyAdmin):
    list_display = ["cluster_id", "label", "composition", "size", "dominant_category", "dominant_share",
                    "model_version", "samples"]
    list_filter = ["model_version"]
    search_fields = ["label"]
    list_select_related = ["dominant_category", "model_version"]
    exclude = ["centroid"]
    readonly_fields = ["samples"]

    def get_queryset(self, request):
        return super().get_queryset(request).defer("centroid")

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        try:  # one query for the samples of the page shown
            cl = response.context_data["cl"]
            self._samples = selectors.cluster_samples(cl.result_list, 4)
        except (AttributeError, KeyError):
            self._samples = {}
        return response

    @admin.display(description="sample products")
    def samples(self, obj):
        products = getattr(self, "_samples", {}).get(obj.pk)
        if products is None:
            products = selectors.cluster_samples([obj], 4).get(obj.pk, [])
        return format_html_join(", ", '<a href="/admin/catalog/product/{}/change/">{}</a>',
                                ((p.pk, p.name) for p in products)) or "-"


@admin.register(RetrievalIndex)
class RetrievalIndexAdmin(ReadOnlyAdmin):
    list_display = ["model_version", "index_type", "nprobe", "n_items", "size", "build_seconds", "created"]
