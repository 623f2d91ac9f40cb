"""1-minute candles: a table partitioned by month in PostgreSQL, a plain table elsewhere.

PostgreSQL gets declarative range partitioning on ``ts`` (one partition per calendar month, UTC),
or a TimescaleDB hypertable when the extension is installed in the database. Later partitions are
created ahead of time by ``marketdata.services.candle_partitions_ensure`` (a daily beat task) and on
demand when bars for a month without one are written.
"""

from datetime import UTC, datetime

import django.db.models.deletion
from django.db import migrations, models

CREATE_PARENT = """
CREATE TABLE marketdata_candle (
    instrument_id bigint NOT NULL,
    ts timestamptz NOT NULL,
    open numeric(14, 4) NOT NULL,
    high numeric(14, 4) NOT NULL,
    low numeric(14, 4) NOT NULL,
    close numeric(14, 4) NOT NULL,
    volume bigint NOT NULL DEFAULT 0,
    oi bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (instrument_id, ts)
){partitioning}
"""


def _month_starts(first: datetime, count: int) -> list[datetime]:
    starts, year, month = [], first.year, first.month
    for _ in range(count + 1):
        starts.append(datetime(year, month, 1, tzinfo=UTC))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return starts


def create_candle_table(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        schema_editor.create_model(apps.get_model("marketdata", "Candle"))
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")
        timescale = cursor.fetchone() is not None
        if timescale:
            cursor.execute(CREATE_PARENT.format(partitioning=""))
            cursor.execute(
                "SELECT create_hypertable('marketdata_candle', 'ts', chunk_time_interval => interval '7 days')"
            )
            return
        cursor.execute(CREATE_PARENT.format(partitioning=" PARTITION BY RANGE (ts)"))
        # This month and the next two; the beat task keeps creating ahead from here.
        starts = _month_starts(datetime.now(UTC).replace(day=1), 3)
        for low, high in zip(starts, starts[1:], strict=False):
            cursor.execute(
                f"CREATE TABLE IF NOT EXISTS marketdata_candle_y{low:%Y}m{low:%m} PARTITION OF marketdata_candle "
                f"FOR VALUES FROM ('{low.isoformat()}') TO ('{high.isoformat()}')"  # DDL takes no bound parameters
            )


def drop_candle_table(apps, schema_editor):
    schema_editor.execute("DROP TABLE IF EXISTS marketdata_candle CASCADE")


class Migration(migrations.Migration):
    dependencies = [
        ("marketdata", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Candle",
                    fields=[
                        (
                            "pk",
                            models.CompositePrimaryKey(
                                "instrument", "ts", blank=True, editable=False, primary_key=True, serialize=False
                            ),
                        ),
                        ("ts", models.DateTimeField()),
                        ("open", models.DecimalField(decimal_places=4, max_digits=14)),
                        ("high", models.DecimalField(decimal_places=4, max_digits=14)),
                        ("low", models.DecimalField(decimal_places=4, max_digits=14)),
                        ("close", models.DecimalField(decimal_places=4, max_digits=14)),
                        ("volume", models.BigIntegerField(default=0)),
                        ("oi", models.BigIntegerField(default=0)),
                        (
                            "instrument",
                            models.ForeignKey(
                                db_constraint=False,
                                on_delete=django.db.models.deletion.DO_NOTHING,
                                related_name="+",
                                to="marketdata.instrument",
                            ),
                        ),
                    ],
                ),
            ],
        ),
        # After the state operation, so that the historical Candle model exists for SQLite's create_model.
        migrations.RunPython(create_candle_table, drop_candle_table),
    ]
