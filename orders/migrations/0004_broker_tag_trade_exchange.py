# Orders get the short tag brokers know them by; trades are unique per exchange.

from django.db import migrations, models

import orders.models


def tags_and_exchanges(apps, schema_editor):
    Order = apps.get_model("orders", "Order")
    Trade = apps.get_model("orders", "Trade")
    for order in Order.objects.filter(broker_tag__isnull=True).only("pk", "client_order_id").iterator():
        # What the paper exchange knew the order by, shortened the same way (paper/migrations/0002).
        Order.objects.filter(pk=order.pk).update(broker_tag=order.client_order_id.hex[:20])
    for trade in Trade.objects.filter(exchange="").select_related("instrument").iterator():
        Trade.objects.filter(pk=trade.pk).update(exchange=trade.instrument.exchange)


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0003_basket"),
    ]

    operations = [
        migrations.AddField(
            model_name="order",
            name="broker_tag",
            field=models.CharField(editable=False, max_length=20, null=True),
        ),
        migrations.AddField(
            model_name="trade",
            name="exchange",
            field=models.CharField(
                default="", help_text="The exchange that numbered the trade (NSE, BSE, NFO...).", max_length=8
            ),
            preserve_default=False,
        ),
        migrations.RunPython(tags_and_exchanges, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="order",
            name="broker_tag",
            field=models.CharField(default=orders.models.new_broker_tag, editable=False, max_length=20, unique=True),
        ),
        migrations.RemoveConstraint(model_name="trade", name="trade_unique_broker_id"),
        migrations.AddConstraint(
            model_name="trade",
            constraint=models.UniqueConstraint(
                fields=("account", "exchange", "broker_trade_id"), name="trade_unique_exchange_trade_id"
            ),
        ),
    ]
