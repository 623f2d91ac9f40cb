from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django_otp.admin import OTPAdminSite
from django_prometheus.exports import ExportToDjangoView

from terminal.api import api
from terminal.views import watchlists

# The admin asks for the one-time code too, and refuses sessions that have not passed it.
admin.site.__class__ = OTPAdminSite

urlpatterns = [
    path("", watchlists.home, name="home"),
    path("watchlists/<int:watchlist_id>/", watchlists.watchlist_panel, name="watchlist-panel"),
    path("watchlists/<int:watchlist_id>/search/", watchlists.instrument_search_results, name="watchlist-search"),
    path("watchlists/<int:watchlist_id>/add/", watchlists.watchlist_add, name="watchlist-add"),
    path(
        "watchlists/<int:watchlist_id>/remove/<int:instrument_id>/",
        watchlists.watchlist_remove,
        name="watchlist-remove",
    ),
    path("login/", auth_views.LoginView.as_view(template_name="accounts/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    path("", include("accounts.urls")),
    path("metrics", ExportToDjangoView, name="prometheus-django-metrics"),
]
