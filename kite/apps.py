from django.apps import AppConfig


class KiteConfig(AppConfig):
    """Zerodha Kite Connect v3: the broker family's adapter, ticker feed (``run_feed --source kite``),
    login and symbol master.
    Like the paper exchange, a plug-in: nothing imports it, and its ``ready`` registers what it offers."""

    name = "kite"
    verbose_name = "Zerodha Kite Connect"

    def ready(self) -> None:
        from brokers.adapters import registry
        from brokers.services.sessions import register_session_started
        from kite import metrics  # noqa: F401 - registers the symbol-master's and the ticker's metrics
        from kite.adapter import KiteAdapter
        from kite.feed_source import build_kite_feed
        from kite.master_refresh import refresh_queue_on_sign_in
        from marketdata.feeds.sources import register_feed_source

        registry.register("kite", KiteAdapter)
        # manage.py run_feed --source kite: the ticker with the KITE_FEED_ACCOUNT_ID account's session.
        register_feed_source("kite", build_kite_feed, help="Kite's websocket ticker (KITE_FEED_ACCOUNT_ID's session)")
        # A Kite sign-in refreshes the day's symbol master when it is not loaded yet (the download needs a session).
        register_session_started("kite-instruments", refresh_queue_on_sign_in)
