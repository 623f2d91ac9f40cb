from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from marketdata.fanout import quote_context
from marketdata.models import InstrumentType
from marketdata.quotes import get_quotes
from marketdata.selectors import instrument_search


@login_required
def watchlist(request: HttpRequest) -> HttpResponse:
    """Indices and stocks with live prices: rows render the same partial the tick socket pushes."""
    instruments = list(instrument_search(instrument_type=InstrumentType.INDEX, limit=20)) + list(
        instrument_search(exchange="NSE", instrument_type=InstrumentType.EQ, limit=100)
    )
    last = get_quotes([i.pk for i in instruments])
    rows = [
        (instrument, quote_context(last[instrument.pk], oob=False) if instrument.pk in last else None)
        for instrument in instruments
    ]
    return render(request, "marketdata/watchlist.html", {"rows": rows})
