"""Feed sources: ``run_feed --source`` and ``build_feed`` build whatever an app registered, the simulator
and replay included, and a source that cannot build its feed ends ``run_feed`` with one line."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from marketdata.feeds.base import Feed
from marketdata.feeds.publisher import Publisher
from marketdata.feeds.runner import build_feed, build_replay, build_simulator
from marketdata.feeds.simulator import SimulatedFeed
from marketdata.feeds.sources import (
    FeedRequest,
    FeedUnavailable,
    UnknownFeedSource,
    feed_source,
    feed_source_names,
    register_feed_source,
    unregister_feed_source,
)
from marketdata.models import Instrument


class Recording(Feed):
    name = "recording"

    def __init__(self, request: FeedRequest) -> None:
        super().__init__(on_quotes=request.publisher.publish)
        self.request = request
        self.subscribed: list[Instrument] = []

    def subscribe(self, instruments):
        self.subscribed.extend(instruments)

    def start(self):
        pass

    def stop(self, timeout=5.0):
        pass


@pytest.fixture
def source():
    names = []

    def register(name, factory, **options):
        names.append(name)
        register_feed_source(name, factory, **options)

    yield register
    for name in names:
        unregister_feed_source(name)


def test_the_simulator_and_replay_are_registered_like_any_other_source():
    assert feed_source("sim").factory is build_simulator
    assert feed_source("replay").factory is build_replay and feed_source("replay").needs_file
    assert {"sim", "replay"} <= set(feed_source_names())


def test_the_simulator_is_built_through_the_registry(sample_master):
    feed = build_feed(source="sim", publisher=Publisher(source="sim", store_candles=False), seed=3, limit=5)
    assert isinstance(feed, SimulatedFeed)
    assert [i.pk for i in feed.instruments] == list(
        Instrument.objects.filter(is_active=True).order_by("pk").values_list("pk", flat=True)[:5]
    )


def test_a_registered_source_gets_the_options_and_is_subscribed_to_the_active_instruments(sample_master, source):
    source("recording", Recording)
    publisher = Publisher(source="recording", store_candles=False)
    feed = build_feed(source="recording", publisher=publisher, seed=5, rate=10.0, limit=3)
    assert isinstance(feed, Recording)
    assert feed.request.source == "recording" and feed.request.publisher is publisher
    assert (feed.request.seed, feed.request.rate) == (5, 10.0)
    assert feed.subscribed == list(feed.request.instruments) and len(feed.subscribed) == 3


def test_an_unknown_source_is_refused(db):
    with pytest.raises(UnknownFeedSource, match=r"registered: .*sim"):
        build_feed(source="nothing", publisher=Publisher(source="nothing", store_candles=False))
    with pytest.raises(CommandError):  # not among run_feed's choices
        call_command("run_feed", "--source", "nothing", "--metrics-port", "0")


def test_run_feed_offers_a_registered_source_and_reports_why_it_cannot_run(db, source):
    def unavailable(request: FeedRequest) -> Feed:
        raise FeedUnavailable("The broker account has no live session.")

    source("broker", unavailable)
    with pytest.raises(CommandError, match=r"^The broker account has no live session\.$"):
        call_command("run_feed", "--source", "broker", "--metrics-port", "0", "--no-candles")


def test_a_source_that_reads_a_file_needs_one(db, source, tmp_path):
    source("recorded", Recording, needs_file=True)
    with pytest.raises(CommandError, match="--source recorded needs an existing FILE"):
        call_command("run_feed", "--source", "recorded", "--metrics-port", "0")
    with pytest.raises(CommandError, match="--source replay needs an existing FILE"):
        call_command("run_feed", "--source", "replay", str(tmp_path / "missing.csv"), "--metrics-port", "0")


@pytest.mark.django_db
def test_without_source_run_feed_takes_the_setting_and_refuses_a_source_not_registered(settings):
    settings.KITE_FEED_ACCOUNT_ID = 0
    settings.MARKETDATA_FEED_SOURCE = "kite"  # as a deployment feeding from Kite sets it
    with pytest.raises(CommandError, match=r"^Set KITE_FEED_ACCOUNT_ID"):
        call_command("run_feed", "--metrics-port", "0", "--no-candles")
    settings.MARKETDATA_FEED_SOURCE = "carrier-pigeon"
    with pytest.raises(CommandError, match=r"'carrier-pigeon' is not a feed source \(one of .*kite.*sim"):
        call_command("run_feed", "--metrics-port", "0", "--no-candles")
