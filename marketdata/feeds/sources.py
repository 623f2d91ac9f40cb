"""Feed sources: the names ``manage.py run_feed --source NAME`` (and ``runner.build_feed``) accept.

Each source registers a factory from its app's ``AppConfig.ready``: market data registers ``sim`` and
``replay`` (``MarketdataConfig.ready``), a broker plug-in its ticker (``kite``, ``KiteConfig.ready``),
so market data never imports the plug-in. A factory gets a ``FeedRequest`` (the publisher, the active
instruments the runner will subscribe, the command's options) and returns a feed that is not yet
subscribed nor started; it raises a ``MarketDataError`` (``FeedUnavailable``) when it cannot build
one, which ``run_feed`` prints as one line and exits with an error status.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from marketdata.errors import MarketDataError

if TYPE_CHECKING:
    from marketdata.feeds.base import Feed
    from marketdata.feeds.publisher import Publisher
    from marketdata.models import Instrument


class UnknownFeedSource(MarketDataError):
    code = "unknown_feed_source"


class FeedUnavailable(MarketDataError):
    """A source that cannot build its feed now (no credentials, no live broker session...)."""

    code = "feed_unavailable"
    status = 503


@dataclass(frozen=True)
class FeedRequest:
    """What a factory builds a feed from: ``publisher.publish`` takes its quotes; ``instruments`` are
    those the runner subscribes once the feed is built; the rest are ``run_feed``'s options."""

    source: str
    publisher: Publisher
    instruments: Sequence[Instrument]
    seed: int | None = None
    rate: float | None = None
    path: Path | None = None
    speed: float = 1.0
    keep_timestamps: bool = False


FeedFactory = Callable[[FeedRequest], "Feed"]


@dataclass(frozen=True)
class FeedSource:
    name: str
    factory: FeedFactory
    needs_file: bool = False  # run_feed requires its FILE argument (replay)
    help: str = ""


_sources: dict[str, FeedSource] = {}


def register_feed_source(name: str, factory: FeedFactory, *, needs_file: bool = False, help: str = "") -> None:
    """Offer ``factory`` as ``run_feed --source name``; registering a name again replaces it."""
    _sources[name] = FeedSource(name=name, factory=factory, needs_file=needs_file, help=help)


def unregister_feed_source(name: str) -> None:
    _sources.pop(name, None)


def feed_source(name: str) -> FeedSource:
    """Return the registered source ``name``; raises UnknownFeedSource."""
    try:
        return _sources[name]
    except KeyError:
        known = ", ".join(sorted(_sources)) or "none"
        raise UnknownFeedSource(
            f"Unknown feed source {name!r} (registered: {known}).", extra={"source": name}
        ) from None


def feed_source_names() -> list[str]:
    return sorted(_sources)
