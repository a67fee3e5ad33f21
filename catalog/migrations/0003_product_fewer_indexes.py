"""Fewer indexes to maintain on product inserts (the event importer creates stub products by the
ten thousand): the product slug is never looked up, the category FK is served by the composite
product_cat_active_id, and external_id is only compared for equality (its unique btree stays), so
its LIKE (varchar_pattern_ops) index goes too, on PostgreSQL."""

import django.db.models.deletion
from django.db import migrations, models


def _like_indexes(schema_editor):
    with schema_editor.connection.cursor() as cur:
        cur.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'catalog_product' "
            "AND indexdef LIKE '%%(external_id varchar_pattern_ops)%%'"
        )
        return [row[0] for row in cur.fetchall()]


def drop_external_id_like(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in _like_indexes(schema_editor):
        schema_editor.execute(f'DROP INDEX IF EXISTS "{name}"')


def create_external_id_like(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql" or _like_indexes(schema_editor):
        return
    schema_editor.execute(
        'CREATE INDEX "catalog_product_external_id_1cd73388_like" '
        "ON catalog_product (external_id varchar_pattern_ops)"
    )


class Migration(migrations.Migration):

    dependencies = [
        ('catalog', '0002_list_indexes'),
    ]

    operations = [
        migrations.AlterField(
            model_name='product',
            name='category',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='products', to='catalog.category'),
        ),
        migrations.AlterField(
            model_name='product',
            name='slug',
            field=models.SlugField(db_index=False, max_length=255),
        ),
        migrations.RunPython(drop_external_id_like, create_external_id_like),
    ]
