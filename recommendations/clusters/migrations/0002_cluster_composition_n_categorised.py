"""Clusters get a staff-facing composition beside their shopper-facing label, and clusterings the
number of items their quality figure was measured over (0: not measured)."""
from django.db import migrations, models
from django.db.models import Count, F, Q


def forwards(apps, schema_editor):
    """Existing clusters: their label was the composition ("Sofa 67% · Notebook 28%"); it stays the
    label until the next build names them. Existing clusterings: count their categorised products."""
    ItemCluster = apps.get_model("clusters", "ItemCluster")
    ItemClustering = apps.get_model("clusters", "ItemClustering")
    ItemCluster.objects.update(composition=F("label"))
    counted = ItemClustering.objects.annotate(
        n=Count("clusters__members", filter=Q(clusters__members__product__category__isnull=False)))
    for clustering in counted:
        ItemClustering.objects.filter(pk=clustering.pk).update(n_categorised=clustering.n)


class Migration(migrations.Migration):
    dependencies = [
        ("clusters", "0001_initial"),
        ("catalog", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="itemcluster",
            name="composition",
            field=models.CharField(blank=True, max_length=255),
        ),
        migrations.AddField(
            model_name="itemclustering",
            name="n_categorised",
            field=models.PositiveIntegerField(default=0, verbose_name="items with a category"),
        ),
        migrations.RunPython(forwards, migrations.RunPython.noop),
    ]
