"""Several watchlists per user: create, rename, reorder, delete and switch, through the services and
the HTMX views, with every bad name refused whole."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import User
from marketdata.models import Instrument
from terminal.errors import WatchlistError
from terminal.models import MAX_WATCHLISTS_PER_USER, Watchlist
from terminal.selectors import watchlist_opened
from terminal.services.watchlists import (
    watchlist_add_instrument,
    watchlist_create,
    watchlist_delete,
    watchlist_ensure_default,
    watchlist_move,
    watchlist_move_instrument,
    watchlist_open,
    watchlist_rename,
)

pytestmark = pytest.mark.django_db


def _instrument(symbol, token):
    return Instrument.objects.create(
        exchange="NSE", segment="NSE", tradingsymbol=symbol, exchange_token=token, instrument_type="EQ"
    )


@pytest.fixture
def trader():
    return User.objects.create_user("trader", password="long-password-123")


@pytest.fixture
def signed_in(client, otp_login, trader):
    otp_login(client, trader)
    return client


def _names(user):
    return list(Watchlist.objects.filter(user=user).values_list("name", flat=True))


def test_lists_are_created_at_the_end_renamed_and_moved(trader):
    first = watchlist_ensure_default(user=trader)
    banks = watchlist_create(user=trader, name="  Banks ")
    watchlist_create(user=trader, name="IT")
    assert _names(trader) == ["Watchlist 1", "Banks", "IT"]
    watchlist_rename(user=trader, watchlist_id=banks.pk, name="PSU banks")
    watchlist_move(user=trader, watchlist_id=banks.pk, direction="left")
    assert _names(trader) == ["PSU banks", "Watchlist 1", "IT"]
    watchlist_move(user=trader, watchlist_id=banks.pk, direction="left")  # already first: stays
    watchlist_move(user=trader, watchlist_id=first.pk, direction="right")
    assert _names(trader) == ["PSU banks", "IT", "Watchlist 1"]
    assert list(Watchlist.objects.filter(user=trader).values_list("position", flat=True)) == [0, 1, 2]


def test_the_last_list_cannot_be_deleted_and_positions_close_up(trader):
    first = watchlist_ensure_default(user=trader)
    second = watchlist_create(user=trader, name="Second")
    third = watchlist_create(user=trader, name="Third")
    watchlist_delete(user=trader, watchlist_id=second.pk)
    assert list(Watchlist.objects.filter(user=trader).values_list("pk", "position")) == [(first.pk, 0), (third.pk, 1)]
    watchlist_delete(user=trader, watchlist_id=first.pk)
    with pytest.raises(WatchlistError) as error:
        watchlist_delete(user=trader, watchlist_id=third.pk)
    assert error.value.code == "watchlist_last" and Watchlist.objects.filter(user=trader).count() == 1


def test_rows_move_up_and_down(trader):
    watchlist = watchlist_ensure_default(user=trader)
    ids = [_instrument(s, str(n)).pk for n, s in enumerate(["A", "B", "C"])]
    for pk in ids:
        watchlist_add_instrument(user=trader, watchlist_id=watchlist.pk, instrument_id=pk)
    watchlist_move_instrument(user=trader, watchlist_id=watchlist.pk, instrument_id=ids[2], direction="up")
    watchlist_move_instrument(user=trader, watchlist_id=watchlist.pk, instrument_id=ids[0], direction="down")
    order = list(watchlist.items.values_list("instrument_id", flat=True))
    assert order == [ids[2], ids[0], ids[1]]
    with pytest.raises(WatchlistError) as error:
        watchlist_move_instrument(user=trader, watchlist_id=watchlist.pk, instrument_id=ids[0], direction="sideways")
    assert error.value.extra == {"field": "direction"}


def test_the_opened_list_is_remembered(trader):
    watchlist_ensure_default(user=trader)
    second = watchlist_create(user=trader, name="Second")
    assert watchlist_opened(user=trader) is None
    watchlist_open(user=trader, watchlist_id=second.pk)
    assert watchlist_opened(user=trader) == second


def test_past_the_limit_a_new_list_is_refused(trader):
    watchlist_ensure_default(user=trader)
    for n in range(MAX_WATCHLISTS_PER_USER - 1):
        watchlist_create(user=trader, name=f"List {n}")
    with pytest.raises(WatchlistError) as error:
        watchlist_create(user=trader, name="One more")
    assert error.value.code == "watchlist_limit"


def test_another_users_list_is_not_found(trader):
    other = User.objects.create_user("other", password="long-password-123")
    theirs = watchlist_ensure_default(user=other)
    for call in (
        lambda: watchlist_rename(user=trader, watchlist_id=theirs.pk, name="Mine"),
        lambda: watchlist_delete(user=trader, watchlist_id=theirs.pk),
        lambda: watchlist_move(user=trader, watchlist_id=theirs.pk, direction="left"),
        lambda: watchlist_open(user=trader, watchlist_id=theirs.pk),
    ):
        with pytest.raises(WatchlistError) as error:
            call()
        assert error.value.code == "watchlist_not_found"
    assert _names(other) == ["Watchlist 1"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.text(max_size=60))
def test_any_name_is_saved_whole_or_refused_with_the_field_named(trader, name):
    watchlist_ensure_default(user=trader)
    before = sorted(_names(trader))
    for action in ("create", "rename"):
        try:
            if action == "create":
                saved = watchlist_create(user=trader, name=name)
            else:
                saved = watchlist_rename(
                    user=trader, watchlist_id=Watchlist.objects.filter(user=trader).first().pk, name=name
                )
        except WatchlistError as error:
            assert error.extra == {"field": "name"} or error.code == "watchlist_limit"
            continue
        stored = Watchlist.objects.get(pk=saved.pk).name
        assert stored == name.strip() and stored.isprintable() and 1 <= len(stored) <= 40
    Watchlist.objects.filter(user=trader).delete()
    watchlist_ensure_default(user=trader)
    assert sorted(_names(trader)) == before


# Views


def test_creating_opens_the_new_list_and_the_dashboard_remembers_it(signed_in, trader):
    watchlist_ensure_default(user=trader)
    response = signed_in.post("/watchlists/new/", {"name": "Banks"}, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert response.status_code == 200 and '<h2 id="watchlist-title">Banks</h2>' in body
    assert '<h2 id="watchlist-title">Banks</h2>' in signed_in.get("/").content.decode()


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("", "watchlist_name_invalid"),
        ("x" * 41, "watchlist_name_invalid"),
        ("a\tb", "watchlist_name_invalid"),
        ("Watchlist 1", "watchlist_name_taken"),
    ],
)
def test_a_bad_name_is_a_422_naming_the_field(signed_in, trader, name, code):
    first = watchlist_ensure_default(user=trader)
    for url in ("/watchlists/new/", f"/watchlists/{first.pk}/rename/"):
        if url.endswith("rename/") and code == "watchlist_name_taken":
            watchlist_create(user=trader, name="Other")
            name = "Other"
        for headers in ({"HTTP_HX_REQUEST": "true"}, {}):
            response = signed_in.post(url, {"name": name}, **headers)
            body = response.content.decode()
            assert response.status_code == 422, (url, headers)
            assert f'data-code="{code}" data-field="name"' in body
    assert "Watchlist 1" in _names(trader)


def test_a_nul_byte_is_refused_before_the_view_and_nothing_is_saved(signed_in, trader):
    first = watchlist_ensure_default(user=trader)
    for url in ("/watchlists/new/", f"/watchlists/{first.pk}/rename/"):
        response = signed_in.post(url, {"name": "a\x00b"}, HTTP_HX_REQUEST="true")
        assert response.status_code == 400 and b"nul_byte" in response.content
    assert _names(trader) == ["Watchlist 1"]


def test_rename_move_delete_by_htmx(signed_in, trader):
    first = watchlist_ensure_default(user=trader)
    second = watchlist_create(user=trader, name="Second")
    assert (
        signed_in.post(f"/watchlists/{second.pk}/rename/", {"name": "Energy"}, HTTP_HX_REQUEST="true").status_code
        == 200
    )
    assert (
        signed_in.post(f"/watchlists/{second.pk}/move/", {"direction": "left"}, HTTP_HX_REQUEST="true").status_code
        == 200
    )
    assert _names(trader) == ["Energy", "Watchlist 1"]
    bad = signed_in.post(f"/watchlists/{second.pk}/move/", {"direction": "sideways"}, HTTP_HX_REQUEST="true")
    assert bad.status_code == 422 and 'data-field="direction"' in bad.content.decode()
    plain = signed_in.post(f"/watchlists/{second.pk}/delete/")
    assert plain.status_code == 302 and _names(trader) == ["Watchlist 1"]
    last = signed_in.post(f"/watchlists/{first.pk}/delete/", HTTP_HX_REQUEST="true")
    assert last.status_code == 422 and 'data-code="watchlist_last"' in last.content.decode()


def test_a_row_moves_by_htmx(signed_in, trader):
    watchlist = watchlist_ensure_default(user=trader)
    a, b = _instrument("AAA", "1"), _instrument("BBB", "2")
    for instrument in (a, b):
        watchlist_add_instrument(user=trader, watchlist_id=watchlist.pk, instrument_id=instrument.pk)
    response = signed_in.post(
        f"/watchlists/{watchlist.pk}/rows/{b.pk}/move/", {"direction": "up"}, HTTP_HX_REQUEST="true"
    )
    body = response.content.decode()
    assert response.status_code == 200 and body.index(f"wl-row-{b.pk}") < body.index(f"wl-row-{a.pk}")
    missing = signed_in.post(
        f"/watchlists/{watchlist.pk}/rows/999999/move/", {"direction": "up"}, HTTP_HX_REQUEST="true"
    )
    assert missing.status_code == 422


def test_another_users_list_is_a_404_everywhere(signed_in, trader):
    other = User.objects.create_user("other", password="long-password-123")
    theirs = watchlist_create(user=other, name="Their secret list")
    for url, data in (
        (f"/watchlists/{theirs.pk}/rename/", {"name": "Mine"}),
        (f"/watchlists/{theirs.pk}/delete/", {}),
        (f"/watchlists/{theirs.pk}/move/", {"direction": "left"}),
        (f"/watchlists/{theirs.pk}/rows/1/move/", {"direction": "up"}),
    ):
        assert signed_in.post(url, data, HTTP_HX_REQUEST="true").status_code == 404
    page = signed_in.get(f"/?wl={theirs.pk}")
    assert page.status_code == 200 and "Their secret list" not in page.content.decode()
    assert _names(other) == ["Their secret list"] and Watchlist.objects.get(pk=theirs.pk).opened_at is None


def test_a_rows_actions_are_at_the_routes_of_those_acts(signed_in, trader):
    from django.urls import reverse

    watchlist = watchlist_ensure_default(user=trader)
    infy = _instrument("INFY", "1594")
    watchlist_add_instrument(user=trader, watchlist_id=watchlist.pk, instrument_id=infy.pk)
    page = signed_in.get(f"/watchlists/{watchlist.pk}/", HTTP_HX_REQUEST="true").content.decode()
    remove = reverse("watchlist-remove", args=[watchlist.pk, infy.pk])
    assert f'action="{remove}"' in page and f'hx-post="{remove}"' in page
    assert f'data-move-url="{reverse("watchlist-move-row", args=[watchlist.pk, infy.pk])}"' in page
    assert f'data-depth-url="{reverse("market-depth", args=[infy.pk])}"' in page
