"""The alerts pages: the dashboard carries the alerts panel and a bell on each watchlist row; the form
creates an alert (or shows each refused field, 422, saving nothing); the panel lists alerts and
firings; deleting works from the panel."""

from decimal import Decimal

import pytest

from alerts.models import Alert
from alerts.services import alert_fire
from terminal.models import Watchlist, WatchlistItem
from tests.alerts.helpers import make_alert
from tests.otp_session import login_with_otp

pytestmark = pytest.mark.django_db


def test_the_dashboard_loads_the_alerts_panel_and_a_bell_on_each_watchlist_row(world, client):
    watchlist = Watchlist.objects.create(user=world.trader, name="Main", position=0)
    WatchlistItem.objects.create(watchlist=watchlist, instrument=world.equity, position=0)
    login_with_otp(client, world.trader)
    html = client.get("/").content.decode()
    assert 'hx-get="/alerts/panel/"' in html and 'id="alert-toasts"' in html
    assert f'href="/alerts/new/?instrument={world.equity.pk}"' in html


def test_the_form_from_a_watchlist_row_creates_an_alert(world, client):
    world.quote(world.equity, "1001", tick=False)
    login_with_otp(client, world.trader)
    form = client.get(f"/alerts/new/?instrument={world.equity.pk}")
    assert form.status_code == 200 and b"NSE:RELIANCE" in form.content and b'value="1001"' in form.content
    response = client.post(
        "/alerts/new/",
        {
            "instrument": world.equity.pk,
            "condition": "ltp_below",
            "level": "990",
            "repeat": "once",
            "cooldown_seconds": "300",
        },
    )
    assert response.status_code == 302 and response["Location"] == "/"
    alert = Alert.objects.get()
    assert (alert.user, alert.condition, alert.level) == (world.trader, "ltp_below", Decimal("990"))


def test_a_refused_form_names_each_field_and_saves_nothing(world, client):
    login_with_otp(client, world.trader)
    response = client.post(
        "/alerts/new/",
        {"instrument": world.equity.pk, "condition": "ltp_above", "level": "-3", "cooldown_seconds": "1"},
    )
    assert response.status_code == 422
    html = response.content.decode()
    assert 'data-field="level" data-code="wrong_sign"' in html
    assert 'data-field="cooldown_seconds" data-code="out_of_range"' in html
    assert not Alert.objects.exists()


def test_the_panel_lists_alerts_and_firings_and_deletes_from_there(world, client):
    alert = make_alert(world.trader, world.equity, "ltp_above", "1000")
    firing = alert_fire(alert_id=alert.pk, ltp=Decimal("1000.5"))
    login_with_otp(client, world.trader)
    html = client.get("/alerts/panel/", headers={"HX-Request": "true"}).content.decode()
    assert f'id="alert-{alert.pk}"' in html and "Fired" in html
    assert f'id="firing-{firing.pk}"' in html and "LTP 1000.5" in html
    assert client.get("/alerts/").status_code == 200
    response = client.post(f"/alerts/{alert.pk}/delete/", headers={"HX-Request": "true"})
    assert response.status_code == 200 and f'id="alert-{alert.pk}"' not in response.content.decode()
    assert not Alert.objects.exists()


def test_editing_an_alert_arms_it_again(world, client):
    alert = make_alert(world.trader, world.equity, "ltp_above", "1000")
    alert_fire(alert_id=alert.pk, ltp=Decimal("1001"))
    login_with_otp(client, world.trader)
    assert client.get(f"/alerts/{alert.pk}/edit/").status_code == 200
    response = client.post(
        f"/alerts/{alert.pk}/edit/", {"instrument": world.equity.pk, "condition": "ltp_above", "level": "1100"}
    )
    assert response.status_code == 302
    alert.refresh_from_db()
    assert alert.state == "active" and alert.level == Decimal("1100")


def test_another_users_alert_cannot_be_edited_or_deleted(world, client):
    alert = make_alert(world.trader, world.equity, "ltp_above", "1000")
    login_with_otp(client, world.viewer)
    assert client.get(f"/alerts/{alert.pk}/edit/").status_code == 404
    assert client.post(f"/alerts/{alert.pk}/delete/").status_code == 404
    assert Alert.objects.count() == 1
