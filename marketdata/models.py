from django.db import models


class Exchange(models.TextChoices):
    NSE = "NSE", "NSE (cash)"
    BSE = "BSE", "BSE (cash)"
    NFO = "NFO", "NSE F&O"
    BFO = "BFO", "BSE F&O"
    MCX = "MCX", "MCX"
    CDS = "CDS", "NSE currency"


class Product(models.TextChoices):
    """How a position is held: the exchanges' product types, which orders carry and RMS limits allow."""

    CNC = "CNC", "Delivery (CNC)"
    MIS = "MIS", "Intraday (MIS)"
    NRML = "NRML", "Carry forward (NRML)"


class InstrumentType(models.TextChoices):
    EQ = "EQ", "Equity"
    FUT = "FUT", "Future"
    CE = "CE", "Call option"
    PE = "PE", "Put option"
    INDEX = "INDEX", "Index"


class Instrument(models.Model):
    """One tradable (or, for indices, watchable) contract from the symbol master."""

    exchange = models.CharField(max_length=8, choices=Exchange.choices)
    segment = models.CharField(max_length=16, help_text="Exchange segment, e.g. NSE, NFO-FUT, NFO-OPT, INDICES.")
    tradingsymbol = models.CharField(max_length=64)
    exchange_token = models.CharField(max_length=32)
    name = models.CharField(max_length=128, blank=True)
    instrument_type = models.CharField(max_length=8, choices=InstrumentType.choices)
    underlying = models.CharField(max_length=64, blank=True, help_text="Underlying symbol for derivatives.")
    expiry = models.DateField(null=True, blank=True)
    strike = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    lot_size = models.PositiveIntegerField(default=1)
    tick_size = models.DecimalField(max_digits=10, decimal_places=4, default="0.05")
    freeze_quantity = models.PositiveIntegerField(null=True, blank=True, help_text="Largest quantity in one order.")
    lower_circuit = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    upper_circuit = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    is_active = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["exchange", "tradingsymbol"], name="instrument_unique_symbol"),
            models.UniqueConstraint(fields=["exchange", "exchange_token"], name="instrument_unique_token"),
        ]
        indexes = [models.Index(fields=["underlying", "expiry"], name="instrument_underlying_expiry")]

    def __str__(self) -> str:
        return f"{self.exchange}:{self.tradingsymbol}"

    @property
    def is_derivative(self) -> bool:
        return self.instrument_type in {InstrumentType.FUT, InstrumentType.CE, InstrumentType.PE}

    @property
    def tradable(self) -> bool:
        """Whether orders may be placed in it: an active contract, not an index (indices are watched and
        charted; their futures and options are what trades). The pre-trade check and the UI both use this."""
        return self.is_active and self.instrument_type != InstrumentType.INDEX


class Candle(models.Model):
    """One 1-minute OHLCV bar of an instrument; higher timeframes are derived from these by query.

    ``ts`` is the bar's opening minute (UTC). In PostgreSQL the table is partitioned by month on
    ``ts`` (a TimescaleDB hypertable when that extension is installed), which is why the primary key
    includes ``ts``: see migration 0002 and ``services.candle_partitions_ensure``.
    """

    pk = models.CompositePrimaryKey("instrument", "ts")
    # No database-level foreign key: partitioned tables and hypertables make it costly, and bars of a
    # delisted instrument are history worth keeping.
    instrument = models.ForeignKey(Instrument, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    ts = models.DateTimeField()
    open = models.DecimalField(max_digits=14, decimal_places=4)
    high = models.DecimalField(max_digits=14, decimal_places=4)
    low = models.DecimalField(max_digits=14, decimal_places=4)
    close = models.DecimalField(max_digits=14, decimal_places=4)
    volume = models.BigIntegerField(default=0)
    oi = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.instrument_id}@{self.ts:%Y-%m-%d %H:%M} {self.close}"
