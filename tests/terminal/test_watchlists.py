import pytest

from accounts.models import User
from marketdata.models import Instrument
from terminal.errors import WatchlistError
from terminal.models import MAX_ITEMS_PER_WATCHLIST, WatchlistItem
from terminal.services.watchlists import (
    watchlist_add_instrument,
    watchlist_create,
    watchlist_ensure_default,
    watchlist_remove_instrument,
)

pytestmark = pytest.mark.django_db


def _instrument(symbol="INFY", token="1594", **extra):
    return Instrument.objects.create(
        exchange="NSE", segment="NSE", tradingsymbol=symbol, exchange_token=token, instrument_type="EQ", **extra
    )


@pytest.fixture
def trader():
    return User.objects.create_user("trader", password="long-password-123")


def test_adding_an_instrument_twice_keeps_one_row(trader):
    watchlist = watchlist_ensure_default(user=trader)
    infy = _instrument()
    first = watchlist_add_instrument(user=trader, watchlist_id=watchlist.pk, instrument_id=infy.pk)
    second = watchlist_add_instrument(user=trader, watchlist_id=watchlist.pk, instrument_id=infy.pk)
    assert first.pk == second.pk and WatchlistItem.objects.count() == 1


def test_it_refuses_another_users_watchlist(trader):
    other = User.objects.create_user("other", password="long-password-123")
    theirs = watchlist_ensure_default(user=other)
    with pytest.raises(WatchlistError) as error:
        watchlist_add_instrument(user=trader, watchlist_id=theirs.pk, instrument_id=_instrument().pk)
    assert error.value.code == "watchlist_not_found"
    with pytest.raises(WatchlistError):
        watchlist_remove_instrument(user=trader, watchlist_id=theirs.pk, instrument_id=1)


def test_it_refuses_an_unknown_or_inactive_instrument(trader):
    watchlist = watchlist_ensure_default(user=trader)
    gone = _instrument(is_active=False)
    for instrument_id in (gone.pk, 999_999):
        with pytest.raises(WatchlistError) as error:
            watchlist_add_instrument(user=trader, watchlist_id=watchlist.pk, instrument_id=instrument_id)
        assert error.value.code == "instrument_not_found"


def test_a_full_watchlist_refuses_one_more(trader):
    watchlist = watchlist_ensure_default(user=trader)
    for n in range(MAX_ITEMS_PER_WATCHLIST):
        watchlist_add_instrument(user=trader, watchlist_id=watchlist.pk, instrument_id=_instrument(f"S{n}", str(n)).pk)
    with pytest.raises(WatchlistError) as error:
        watchlist_add_instrument(user=trader, watchlist_id=watchlist.pk, instrument_id=_instrument("LAST", "x").pk)
    assert error.value.code == "watchlist_full"


@pytest.mark.parametrize(("name", "code"), [("", "watchlist_name_invalid"), ("Watchlist 1", "watchlist_name_taken")])
def test_it_rejects_an_empty_or_duplicate_watchlist_name(trader, name, code):
    watchlist_ensure_default(user=trader)
    with pytest.raises(WatchlistError) as error:
        watchlist_create(user=trader, name=name)
    assert error.value.code == code
