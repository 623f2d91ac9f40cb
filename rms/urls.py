from django.urls import path

from rms import views
from rms.models import LimitScope

app_name = "rms"

urlpatterns = [
    path("orgs/<slug:slug>/limits/", views.limits, name="limits"),
    path(
        "orgs/<slug:slug>/limits/organisation/",
        views.limits_save,
        {"scope": LimitScope.ORGANISATION},
        name="limits-organisation",
    ),
    path(
        "orgs/<slug:slug>/limits/accounts/<int:account_id>/",
        views.limits_save,
        {"scope": LimitScope.ACCOUNT},
        name="limits-account",
    ),
    path(
        "orgs/<slug:slug>/limits/members/<int:user_id>/",
        views.limits_save,
        {"scope": LimitScope.USER},
        name="limits-member",
    ),
]
