from decimal import Decimal

from django.db import migrations, models

# 15 significant digits are what SQLite (standalone mode) stores exactly; a limit at or above ₹10 lakh
# crore, which no order reaches, is lowered to the largest value that fits so the column can narrow.
_LARGEST = Decimal("9999999999999.99")


def cap_limits(apps, schema_editor):
    RiskLimit = apps.get_model("rms", "RiskLimit")
    for field in ("max_order_value", "max_daily_loss"):
        RiskLimit.objects.filter(**{f"{field}__gt": _LARGEST}).update(**{field: _LARGEST})


class Migration(migrations.Migration):
    dependencies = [
        ("rms", "0002_risklimit_user_within_organisation"),
    ]

    operations = [
        migrations.RunPython(cap_limits, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="risklimit",
            name="max_daily_loss",
            field=models.DecimalField(blank=True, decimal_places=2, max_digits=15, null=True),
        ),
        migrations.AlterField(
            model_name="risklimit",
            name="max_order_value",
            field=models.DecimalField(blank=True, decimal_places=2, max_digits=15, null=True),
        ),
    ]
