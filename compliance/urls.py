from django.urls import path

from compliance import views

app_name = "compliance"

urlpatterns = [
    path("orgs/<slug:slug>/compliance/trades/", views.trade_trail, name="trade-trail"),
    path("orgs/<slug:slug>/compliance/trades/export/", views.trade_trail_export, name="trade-trail-export"),
    path("orgs/<slug:slug>/compliance/order-to-trade/", views.order_to_trade, name="order-to-trade"),
    path(
        "orgs/<slug:slug>/compliance/order-to-trade/export/",
        views.order_to_trade_export,
        name="order-to-trade-export",
    ),
    path("orgs/<slug:slug>/compliance/exports/", views.export_jobs, name="exports"),
    path("orgs/<slug:slug>/compliance/exports/<uuid:job_id>/", views.export_job, name="export-job"),
    path("orgs/<slug:slug>/compliance/exports/<uuid:job_id>/download/", views.export_download, name="export-download"),
]
