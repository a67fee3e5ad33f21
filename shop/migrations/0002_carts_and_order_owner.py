"""Carts in the database, and orders that name their cart, visit and owner instead of the session key.

Existing orders keep appearing under "your orders" in the browser that placed them: the live session
of each order gets an owner id (written through the configured session store, so a cache in front
of it is updated too) and the order takes it. Orders whose session is gone keep no owner.
"""
import uuid
from importlib import import_module

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

# The storefront's session entry for the owner id (shop.storefront.selectors.OWNER_SESSION_KEY),
# spelled out here because a migration must not change when the code does.
OWNER_SESSION_KEY = "shop_owner"


def orders_owned_through_sessions(apps, schema_editor):
    Order = apps.get_model("shop", "Order")
    keys = list(Order.objects.exclude(session_key="").values_list("session_key", flat=True).distinct())
    if not keys:
        return
    store_class = import_module(settings.SESSION_ENGINE).SessionStore
    for key in keys:
        session = store_class(session_key=key)
        owner = session.get(OWNER_SESSION_KEY)  # loading an expired or unknown session drops its key
        if session.session_key is None:
            continue
        if not owner:
            owner = str(uuid.uuid4())
            session[OWNER_SESSION_KEY] = owner
            session.save()
        Order.objects.filter(session_key=key).update(owner=owner)


class Migration(migrations.Migration):

    dependencies = [
        ('catalog', '0003_product_fewer_indexes'),
        ('sessions', '0001_initial'),
        ('shop', '0001_orders'),
        ('tracking', '0007_id_sequence_cache'),
    ]

    operations = [
        migrations.AddField(
            model_name='order',
            name='owner',
            field=models.UUIDField(blank=True, db_index=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name='order',
            name='visit',
            field=models.ForeignKey(blank=True, editable=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='orders', to='tracking.visit'),
        ),
        migrations.CreateModel(
            name='Cart',
            fields=[
                ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ('owner', models.UUIDField(editable=False)),
                ('status', models.CharField(choices=[('open', 'Open'), ('ordered', 'Ordered')], default='open', max_length=10)),
                ('created', models.DateTimeField(auto_now_add=True)),
                ('updated', models.DateTimeField(auto_now=True)),
            ],
            options={
                'ordering': ['-created'],
                'constraints': [models.UniqueConstraint(condition=models.Q(('status', 'open')), fields=('owner',), name='cart_one_open_per_owner')],
            },
        ),
        migrations.AddField(
            model_name='order',
            name='cart',
            field=models.OneToOneField(blank=True, editable=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='order', to='shop.cart'),
        ),
        migrations.CreateModel(
            name='CartItem',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('quantity', models.PositiveIntegerField()),
                ('cart', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='items', to='shop.cart')),
                ('product', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='catalog.product')),
            ],
            options={
                'ordering': ['id'],
                'constraints': [models.UniqueConstraint(fields=('cart', 'product'), name='cartitem_one_line_per_product'), models.CheckConstraint(condition=models.Q(('quantity__gte', 1), ('quantity__lte', 99)), name='cartitem_quantity_range')],
            },
        ),
        migrations.RunPython(orders_owned_through_sessions, migrations.RunPython.noop),
        # The session key was a live credential shown in the admin; no trace of it is kept.
        migrations.RemoveField(
            model_name='order',
            name='session_key',
        ),
    ]
