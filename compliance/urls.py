from django.urls import path

from compliance import views
from compliance.reports import (
    algo_summary,
    audit_log,
    index,
    kill_switch,
    login_history,
    platform_orders,
    rms_rejections,
)

app_name = "compliance"

ORG = "orgs/<slug:slug>/compliance/"
PLATFORM = "platform/compliance/"

urlpatterns = [
    path("compliance/", index.reports_home, name="home"),
    path(ORG, index.reports, name="reports"),
    path(PLATFORM, index.platform_reports, name="platform-reports"),
    path(f"{ORG}trades/", views.trade_trail, name="trade-trail"),
    path(f"{ORG}trades/export/", views.trade_trail_export, name="trade-trail-export"),
    path(f"{ORG}order-to-trade/", views.order_to_trade, name="order-to-trade"),
    path(f"{ORG}order-to-trade/export/", views.order_to_trade_export, name="order-to-trade-export"),
    path(f"{ORG}audit/", audit_log.audit_log, name="audit-log"),
    path(f"{ORG}audit/export/", audit_log.audit_log_export, name="audit-log-export"),
    path(f"{ORG}audit/verify/", audit_log.audit_verify_start, name="audit-verify"),
    path(f"{ORG}algos/", algo_summary.algo_summary, name="algo-summary"),
    path(f"{ORG}algos/export/", algo_summary.algo_summary_export, name="algo-summary-export"),
    path(f"{ORG}logins/", login_history.login_history, name="login-history"),
    path(f"{ORG}logins/export/", login_history.login_history_export, name="login-history-export"),
    path(f"{ORG}kill-switch/", kill_switch.kill_switch_events, name="kill-switch-events"),
    path(f"{ORG}kill-switch/export/", kill_switch.kill_switch_events_export, name="kill-switch-events-export"),
    path(f"{ORG}rms-rejections/", rms_rejections.rms_rejections, name="rms-rejections"),
    path(f"{ORG}rms-rejections/export/", rms_rejections.rms_rejections_export, name="rms-rejections-export"),
    # The platform's versions, every organisation (platform staff who may view reports).
    path(f"{PLATFORM}trades/", platform_orders.platform_trade_trail, name="platform-trade-trail"),
    path(f"{PLATFORM}trades/export/", platform_orders.platform_trade_trail_export, name="platform-trade-trail-export"),
    path(f"{PLATFORM}order-to-trade/", platform_orders.platform_order_to_trade, name="platform-order-to-trade"),
    path(
        f"{PLATFORM}order-to-trade/export/",
        platform_orders.platform_order_to_trade_export,
        name="platform-order-to-trade-export",
    ),
    path(f"{PLATFORM}audit/", audit_log.platform_audit_log, name="platform-audit-log"),
    path(f"{PLATFORM}audit/export/", audit_log.platform_audit_log_export, name="platform-audit-log-export"),
    path(f"{PLATFORM}audit/verify/", audit_log.platform_audit_verify_start, name="platform-audit-verify"),
    path(f"{PLATFORM}algos/", algo_summary.platform_algo_summary, name="platform-algo-summary"),
    path(f"{PLATFORM}algos/export/", algo_summary.platform_algo_summary_export, name="platform-algo-summary-export"),
    path(f"{PLATFORM}logins/", login_history.platform_login_history, name="platform-login-history"),
    path(
        f"{PLATFORM}logins/export/",
        login_history.platform_login_history_export,
        name="platform-login-history-export",
    ),
    path(f"{PLATFORM}kill-switch/", kill_switch.platform_kill_switch_events, name="platform-kill-switch-events"),
    path(
        f"{PLATFORM}kill-switch/export/",
        kill_switch.platform_kill_switch_events_export,
        name="platform-kill-switch-events-export",
    ),
    path(f"{PLATFORM}rms-rejections/", rms_rejections.platform_rms_rejections, name="platform-rms-rejections"),
    path(
        f"{PLATFORM}rms-rejections/export/",
        rms_rejections.platform_rms_rejections_export,
        name="platform-rms-rejections-export",
    ),
    path("orgs/<slug:slug>/compliance/exports/", views.export_jobs, name="exports"),
    path("orgs/<slug:slug>/compliance/exports/<uuid:job_id>/", views.export_job, name="export-job"),
    path("orgs/<slug:slug>/compliance/exports/<uuid:job_id>/download/", views.export_download, name="export-download"),
]
