from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView
from django_otp.admin import OTPAdminSite

from config.api import api
from infra.metrics import metrics_view
from terminal.views import (
    baskets,
    broker_sessions,
    chart,
    depth,
    gtt,
    holdings,
    option_chain,
    reports,
    trading,
    watchlists,
)

# The admin asks for the one-time code too, and refuses sessions that have not passed it.
admin.site.__class__ = OTPAdminSite

urlpatterns = [
    path("", watchlists.home, name="home"),
    path("watchlists/<int:watchlist_id>/", watchlists.watchlist_panel, name="watchlist-panel"),
    path("watchlists/<int:watchlist_id>/search/", watchlists.instrument_search_results, name="watchlist-search"),
    path("watchlists/<int:watchlist_id>/add/", watchlists.watchlist_add, name="watchlist-add"),
    path("watchlists/new/", watchlists.watchlist_new, name="watchlist-new"),
    path("watchlists/<int:watchlist_id>/rename/", watchlists.watchlist_rename_view, name="watchlist-rename"),
    path("watchlists/<int:watchlist_id>/delete/", watchlists.watchlist_delete_view, name="watchlist-delete"),
    path("watchlists/<int:watchlist_id>/move/", watchlists.watchlist_move_view, name="watchlist-move"),
    path(
        "watchlists/<int:watchlist_id>/rows/<int:instrument_id>/move/",
        watchlists.watchlist_move_row,
        name="watchlist-move-row",
    ),
    path(
        "watchlists/<int:watchlist_id>/remove/<int:instrument_id>/",
        watchlists.watchlist_remove,
        name="watchlist-remove",
    ),
    path("chart/<int:instrument_id>/indicators/", chart.indicators, name="chart-indicators"),
    path("options/", option_chain.option_chain_page, name="option-chain"),
    path("options/strategy/", option_chain.option_strategy, name="option-strategy"),
    path("reports/", reports.reports_home, name="reports"),
    path("reports/<int:account_id>/pnl/", reports.pnl_page, name="reports-pnl"),
    path("reports/<int:account_id>/pnl/export/", reports.pnl_export, name="reports-pnl-export"),
    path("reports/<int:account_id>/tradebook/", reports.tradebook_page, name="reports-tradebook"),
    path("reports/<int:account_id>/tradebook/export/", reports.tradebook_export, name="reports-tradebook-export"),
    path("reports/<int:account_id>/tax/", reports.tax_page, name="reports-tax"),
    path("reports/<int:account_id>/tax/export/", reports.tax_export, name="reports-tax-export"),
    path("holdings/", holdings.holdings_home, name="holdings-home"),
    path("holdings/<int:account_id>/", holdings.holdings_page, name="holdings"),
    path("holdings/<int:account_id>/panel/", holdings.holdings_panel, name="holdings-panel"),
    path("trading/<int:account_id>/panels/gtt/", gtt.gtt_panel, name="gtt-panel"),  # ahead of the generic panel
    path("trading/<int:account_id>/panels/<slug:name>/", trading.panel, name="trading-panel"),
    path("trading/<int:account_id>/ticket/", trading.ticket, name="order-ticket"),
    path("trading/<int:account_id>/ticket/preview/", trading.preview, name="order-preview"),
    path("marketdata/depth/<int:instrument_id>/", depth.depth, name="market-depth"),
    path("trading/<int:account_id>/baskets/", baskets.basket_page, name="baskets"),
    path("trading/<int:account_id>/baskets/edit/", baskets.basket_edit, name="basket-edit"),
    path("trading/<int:account_id>/baskets/preview/", baskets.basket_preview, name="basket-preview"),
    path("trading/<int:account_id>/baskets/place/", baskets.basket_place, name="basket-place"),
    path("trading/<int:account_id>/baskets/delete/", baskets.basket_remove, name="basket-delete"),
    path("trading/<int:account_id>/orders/", trading.place, name="order-place"),
    path("trading/<int:account_id>/orders/cancel-all/", trading.cancel_all, name="orders-cancel-all"),
    path("trading/<int:account_id>/positions/square-off/", trading.square_off, name="position-square-off"),
    path("trading/<int:account_id>/kill-switch/", trading.kill_switch, name="kill-switch"),
    path("trading/<int:account_id>/gtt/", gtt.gtt_place, name="gtt-place"),
    path("trading/<int:account_id>/gtt/<slug:trigger_id>/delete/", gtt.gtt_delete, name="gtt-delete"),
    path("trading/orders/<int:order_id>/cancel/", trading.cancel, name="order-cancel"),
    path("trading/orders/<int:order_id>/modify/", trading.modify, name="order-modify"),
    path("brokers/accounts/<int:account_id>/connect/", broker_sessions.connect, name="broker-connect"),
    path("brokers/<slug:broker>/callback/", broker_sessions.callback, name="broker-callback"),
    path("brokers/kite/", include("kite.urls")),
    path("login/", auth_views.LoginView.as_view(template_name="accounts/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    # The admin signs in through the site's sign-in, so the second factor has one path (accounts.otp.otp_check:
    # audited, counted towards the lockout, reading sealed TOTP seeds); django-otp's admin form has neither.
    path("admin/login/", RedirectView.as_view(pattern_name="login", query_string=True)),
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    path("", include("accounts.urls")),
    path("", include("brokers.urls")),
    path("", include("rms.urls")),
    path("", include("compliance.urls")),
    path("", include("strategies.urls")),
    path("", include("alerts.urls")),
    path("metrics", metrics_view, name="prometheus-django-metrics"),
]

# Errors Django raises before a view (an oversized body, an unknown route) answer /api/ in the API's shape.
handler400 = "core.request_guard.bad_request"
handler403 = "core.request_guard.permission_denied"
handler404 = "core.request_guard.not_found"
handler500 = "core.request_guard.server_error"
