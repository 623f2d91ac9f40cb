"""An alert is evaluated on every batch of quotes and fires once, however many processes hold it:
the conditional UPDATE lets one win. One-shot alerts stop; re-arming ones wait out their cooldown."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from alerts.book import AlertBook, invalidate
from alerts.models import Alert, AlertFiring, AlertNotification, AlertState
from alerts.services import alert_fire
from marketdata.listeners import PassedRange
from marketdata.quotes import Quote
from tests.alerts.helpers import make_alert, tick

pytestmark = pytest.mark.django_db


def test_an_alert_fires_when_its_level_is_reached_and_queues_its_deliveries(
    world, sent_tasks, django_capture_on_commit_callbacks
):
    alert = make_alert(world.trader, world.equity, "ltp_above", "1000")
    tick(world.equity, "999.95")
    assert not AlertFiring.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        tick(world.equity, "1000.00")
    firing = AlertFiring.objects.get()
    assert firing.alert_id == alert.pk and firing.ltp == Decimal("1000")
    assert "NSE:RELIANCE" in firing.message and "1000" in firing.message
    alert.refresh_from_db()
    assert alert.state == AlertState.FIRED and alert.fired_count == 1
    page = AlertNotification.objects.get(firing=firing)
    assert page.channel == "page" and page.status == "pending"
    assert sent_tasks == [("alerts.tasks.deliver_notification", (page.pk,))]
    tick(world.equity, "1010")  # a one-shot alert has fired: nothing more
    assert AlertFiring.objects.count() == 1


def test_two_processes_holding_the_same_alert_fire_it_once(world, sent_tasks, django_capture_on_commit_callbacks):
    make_alert(world.trader, world.equity, "cross_up", "1000")
    first, second = AlertBook(), AlertBook()
    with django_capture_on_commit_callbacks(execute=True):
        for price in ("990", "1001"):
            tick(world.equity, price, book=first)
            tick(world.equity, price, book=second)
    assert AlertFiring.objects.count() == 1
    assert len(sent_tasks) == 1


def test_a_rearming_alert_fires_again_only_after_its_cooldown(world):
    alert = make_alert(world.trader, world.equity, "ltp_below", "950", repeat="rearm", cooldown_seconds=60)
    first, second = AlertBook(), AlertBook()
    tick(world.equity, "949", book=first)
    tick(world.equity, "948", book=second)  # the other process: still within the cooldown
    assert AlertFiring.objects.count() == 1
    assert alert_fire(alert_id=alert.pk, ltp=Decimal("947")) is None
    Alert.objects.filter(pk=alert.pk).update(last_fired_at=timezone.now() - timedelta(seconds=61))
    invalidate()
    third = AlertBook()
    tick(world.equity, "946", book=third)
    alert.refresh_from_db()
    assert alert.state == AlertState.ACTIVE and alert.fired_count == 2


def test_a_crossing_between_two_batches_that_the_hand_off_conflated_still_fires(world):
    make_alert(world.trader, world.equity, "ltp_above", "1050")
    book = AlertBook()
    tick(world.equity, "1000", book=book)
    newest = Quote(instrument_id=world.equity.pk, ltp=Decimal("1010"), ts=timezone.now())
    passed = PassedRange(timezone.now(), Decimal("1001"), Decimal("1052"), Decimal("1001"), Decimal("1052"), 3)
    book.on_quotes([newest], {world.equity.pk: passed})
    assert AlertFiring.objects.get().ltp == Decimal("1052")


def test_a_deleted_or_changed_alert_leaves_the_book_at_the_next_batch(world):
    alert = make_alert(world.trader, world.equity, "ltp_above", "1000")
    book = AlertBook()
    tick(world.equity, "900", book=book)
    assert book.armed_count() == 1
    alert.delete()
    invalidate()
    book._checked_at = 0.0  # its next check is due
    tick(world.equity, "1100", book=book)
    assert book.armed_count() == 0 and not AlertFiring.objects.exists()


def test_a_change_alert_uses_the_previous_close(world):
    make_alert(world.trader, world.equity, "change_below", "-2.5")
    tick(world.equity, "980", close="1000")
    assert not AlertFiring.objects.exists()
    tick(world.equity, "975", close="1000")
    assert AlertFiring.objects.count() == 1


def test_a_moving_average_crossing_reads_the_stored_minute_closes(world):
    from marketdata.models import Candle

    start = timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=10)
    Candle.objects.bulk_create(
        Candle(instrument=world.equity, ts=start + timedelta(minutes=i), open=c, high=c, low=c, close=c)
        for i, c in enumerate([Decimal(1000 + i) for i in range(10)])
    )
    make_alert(world.trader, world.equity, "ma_cross_up", "", average="sma", average_minutes=5)
    # The SMA of the last 5 closes (1005 to 1009) is 1007.
    tick(world.equity, "1006")
    tick(world.equity, "1006.95")
    assert not AlertFiring.objects.exists()
    tick(world.equity, "1007")
    assert AlertFiring.objects.get().message.startswith("NSE:RELIANCE crosses above its 5-minute SMA: LTP 1007")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_listeners_on_their_own_connections_racing_on_one_quote_fire_once(world):
    """Two processes' listeners, each on its own database connection, see the same batch at once."""
    import threading

    from django.db import connection

    alerts = [make_alert(world.trader, world.equity, "ltp_above", "1000") for _ in range(5)]
    books = [AlertBook(), AlertBook()]
    quote = Quote(instrument_id=world.equity.pk, ltp=Decimal("1000.5"), ts=timezone.now())
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def listen(book: AlertBook) -> None:
        try:
            book.reload()
            start.wait(timeout=10)
            book.on_quotes([quote], {})
        except BaseException as exc:  # reported below, on the test's thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=listen, args=(book,)) for book in books]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert AlertFiring.objects.count() == len(alerts)
    assert sorted(AlertFiring.objects.values_list("alert_id", flat=True)) == sorted(a.pk for a in alerts)
    assert AlertNotification.objects.count() == len(alerts)
