# The paper exchange's book moves from the brokers app to its own: the tables are kept (state only),
# then renamed to this app's names.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("brokers", "0004_fewer_indexes"),
        ("marketdata", "0002_candle"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name="PaperOrder",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        (
                            "client_order_id",
                            models.CharField(
                                max_length=64, help_text="The OMS's tag; the paper exchange's idempotency key."
                            ),
                        ),
                        ("broker_order_id", models.CharField(max_length=32)),
                        ("side", models.CharField(max_length=4)),
                        ("quantity", models.PositiveIntegerField()),
                        ("filled_quantity", models.PositiveIntegerField(default=0)),
                        ("average_price", models.DecimalField(blank=True, decimal_places=4, max_digits=16, null=True)),
                        ("order_type", models.CharField(max_length=8)),
                        ("product", models.CharField(max_length=8)),
                        ("validity", models.CharField(max_length=4)),
                        ("price", models.DecimalField(blank=True, decimal_places=4, max_digits=14, null=True)),
                        ("trigger_price", models.DecimalField(blank=True, decimal_places=4, max_digits=14, null=True)),
                        ("status", models.CharField(max_length=20)),
                        ("message", models.CharField(blank=True, max_length=200)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("updated_at", models.DateTimeField(auto_now=True)),
                        (
                            "account",
                            models.ForeignKey(
                                db_index=False,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="paper_orders",
                                to="brokers.brokeraccount",
                            ),
                        ),
                        (
                            "instrument",
                            models.ForeignKey(
                                db_index=False,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to="marketdata.instrument",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "brokers_paperorder",
                        "indexes": [models.Index(fields=["instrument", "status"], name="paperorder_instrument_status")],
                        "constraints": [
                            models.UniqueConstraint(
                                fields=("account", "client_order_id"), name="paperorder_unique_client_id"
                            ),
                            models.UniqueConstraint(
                                fields=("broker_order_id",), name="paperorder_unique_broker_order_id"
                            ),
                            models.CheckConstraint(
                                condition=models.Q(("filled_quantity__lte", models.F("quantity"))),
                                name="paperorder_no_overfill",
                            ),
                        ],
                    },
                ),
                migrations.CreateModel(
                    name="PaperFill",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("trade_id", models.CharField(max_length=40, unique=True)),
                        ("quantity", models.PositiveIntegerField()),
                        ("price", models.DecimalField(decimal_places=4, max_digits=14)),
                        ("ts", models.DateTimeField()),
                        (
                            "order",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT, related_name="fills", to="paper.paperorder"
                            ),
                        ),
                    ],
                    options={"db_table": "brokers_paperfill", "ordering": ["id"]},
                ),
            ],
        ),
        migrations.AlterModelTable(name="paperorder", table=None),
        migrations.AlterModelTable(name="paperfill", table=None),
    ]
