# The paper exchange knows orders by the OMS's short order tag (orders.Order.broker_tag).

from django.db import migrations, models
from django.db.models import Value
from django.db.models.functions import Left, Replace


def shorten_tags(apps, schema_editor):
    PaperOrder = apps.get_model("paper", "PaperOrder")
    # The client order id's hex digits, as orders/migrations/0004 made the orders' tags.
    PaperOrder.objects.filter(tag__contains="-").update(tag=Left(Replace("tag", Value("-"), Value("")), 20))


class Migration(migrations.Migration):
    dependencies = [
        ("paper", "0001_initial"),
        ("orders", "0004_broker_tag_trade_exchange"),
    ]

    operations = [
        migrations.RemoveConstraint(model_name="paperorder", name="paperorder_unique_client_id"),
        migrations.RenameField(model_name="paperorder", old_name="client_order_id", new_name="tag"),
        migrations.AlterField(
            model_name="paperorder",
            name="tag",
            field=models.CharField(
                help_text="The OMS's order tag; the paper exchange's idempotency key.", max_length=64
            ),
        ),
        migrations.RunPython(shorten_tags, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="paperorder",
            constraint=models.UniqueConstraint(fields=("account", "tag"), name="paperorder_unique_tag"),
        ),
    ]
