from django.urls import path

from alerts import views

app_name = "alerts"

urlpatterns = [
    path("alerts/", views.alerts_page, name="page"),
    path("alerts/panel/", views.panel, name="panel"),
    path("alerts/new/", views.alert_new, name="new"),
    path("alerts/<int:alert_id>/edit/", views.alert_edit, name="edit"),
    path("alerts/<int:alert_id>/delete/", views.alert_remove, name="delete"),
    path("orgs/<slug:slug>/telegram/", views.telegram, name="telegram"),
]
