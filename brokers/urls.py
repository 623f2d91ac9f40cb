from django.urls import path

from brokers import views

app_name = "brokers"

urlpatterns = [
    path("orgs/<slug:slug>/broker-accounts/", views.accounts, name="accounts"),
    path("orgs/<slug:slug>/broker-accounts/add/", views.account_add, name="account-add"),
    path(
        "orgs/<slug:slug>/broker-accounts/<int:account_id>/credentials/",
        views.account_credentials,
        name="account-credentials",
    ),
]
