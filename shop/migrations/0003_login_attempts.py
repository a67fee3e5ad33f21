"""Counters of the admin sign-in lockout (shop.login_guard): per username and per client address."""
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("shop", "0002_carts_and_order_owner"),
    ]

    operations = [
        migrations.CreateModel(
            name="LoginAttempt",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("kind", models.CharField(choices=[("username", "Username"), ("address", "Client address")],
                                          max_length=8)),
                ("key", models.CharField(max_length=150)),
                ("failures", models.PositiveIntegerField(default=0)),
                ("window_start", models.DateTimeField()),
            ],
            options={
                "indexes": [models.Index(fields=["window_start"], name="loginattempt_window_idx")],
                "constraints": [models.UniqueConstraint(fields=("kind", "key"), name="loginattempt_one_per_key")],
            },
        ),
    ]
