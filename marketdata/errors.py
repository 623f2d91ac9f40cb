"""Market-data errors: unknown instruments, bad history requests, bad symbol-master rows, an unreachable
quote store."""

from core.errors import ApplicationError


class MarketDataError(ApplicationError):
    code = "marketdata_error"
    status = 400


class UnknownInstrument(MarketDataError):
    """One or more instruments named in a request are not in the symbol master."""

    code = "unknown_instrument"
    status = 404


class QuotesUnavailable(MarketDataError):
    """The quote store (Redis, in the full stack) cannot be reached: no price can be read or written.
    An order that needs the market's price is refused with it rather than judged without one."""

    code = "quotes_unavailable"
    status = 503


class InvalidTimeframe(MarketDataError):
    code = "invalid_timeframe"


class InvalidRange(MarketDataError):
    code = "invalid_range"


class InvalidInstrumentRow(MarketDataError):
    """A row of a symbol-master file that cannot be turned into an instrument; ``extra`` names the field."""

    code = "invalid_instrument_row"


class UnknownUnderlying(MarketDataError):
    """No active option has this underlying."""

    code = "unknown_underlying"
    status = 404


class InvalidExpiry(MarketDataError):
    """The underlying has no options expiring on the date asked for (or it is not a date)."""

    code = "invalid_expiry"
    status = 422
