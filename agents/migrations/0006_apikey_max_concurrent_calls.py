import django.core.validators
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("agents", "0005_webhook_delivery_pending_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="apikey",
            name="max_concurrent_calls",
            field=models.PositiveIntegerField(
                blank=True,
                help_text="Calls this key may have live at once; empty = the server default (MAX_CONCURRENT_CALLS_PER_KEY).",
                null=True,
                validators=[
                    django.core.validators.MinValueValidator(1),
                    django.core.validators.MaxValueValidator(100000),
                ],
            ),
        ),
    ]
