"""Product currency: an ISO 4217 code, checked by the model (admin forms) as by the importer."""

import catalog.currencies
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("catalog", "0003_product_fewer_indexes"),
    ]

    operations = [
        migrations.AlterField(
            model_name="product",
            name="currency",
            field=models.CharField(default="EUR", max_length=3, validators=[catalog.currencies.validate_currency]),
        ),
    ]
