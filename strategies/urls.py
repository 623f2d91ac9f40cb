from django.urls import path

from strategies import views

app_name = "strategies"

DEPLOYMENT = "orgs/<slug:slug>/deployments/<int:deployment_id>/"
BACKTEST = "orgs/<slug:slug>/backtests/<int:backtest_id>/"

urlpatterns = [
    path("hooks/strategies/<str:token>/", views.webhook, name="webhook"),
    path("strategies/", views.home, name="home"),
    path("orgs/<slug:slug>/strategies/", views.strategies, name="list"),
    path("orgs/<slug:slug>/strategies/new/", views.rule_builder, name="rule-builder"),
    path("orgs/<slug:slug>/strategies/new-webhook/", views.webhook_strategy_new, name="webhook-strategy-new"),
    path("orgs/<slug:slug>/strategies/<int:definition_id>/deploy/", views.deploy, name="deploy"),
    path(DEPLOYMENT, views.deployment, name="deployment"),
    path(DEPLOYMENT + "live/", views.deployment_live, name="deployment-live"),
    path(DEPLOYMENT + "webhook-secret/", views.deployment_webhook_secret, name="deployment-webhook-secret"),
    *[
        path(DEPLOYMENT + f"{action}/", views.deployment_action, {"action": action}, name=f"deployment-{action}")
        for action in ("start", "pause", "resume", "stop", "emergency-stop")
    ],
    path("orgs/<slug:slug>/strategies/<int:definition_id>/backtest/", views.backtest_new, name="backtest-new"),
    path("orgs/<slug:slug>/strategies/<int:definition_id>/sweep/", views.sweep_new, name="sweep-new"),
    path("orgs/<slug:slug>/backtests/", views.backtests, name="backtests"),
    path("orgs/<slug:slug>/backtests/compare/", views.backtest_compare, name="backtest-compare"),
    path(BACKTEST, views.backtest, name="backtest"),
    path(BACKTEST + "progress/", views.backtest_progress, name="backtest-progress"),
    path(BACKTEST + "trades.csv", views.backtest_trades_csv, name="backtest-trades-csv"),
    path(BACKTEST + "deploy/", views.backtest_deploy, name="backtest-deploy"),
    path("orgs/<slug:slug>/sweeps/<int:sweep_id>/", views.sweep, name="sweep"),
    path("orgs/<slug:slug>/algo-ids/", views.algo_id_list, name="algo-ids"),
    path("orgs/<slug:slug>/algo-ids/add/", views.algo_id_add, name="algo-id-add"),
    path("orgs/<slug:slug>/algo-ids/<int:algo_id>/deactivate/", views.algo_id_deactivate, name="algo-id-deactivate"),
]
