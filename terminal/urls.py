from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django_prometheus.exports import ExportToDjangoView

from terminal import views
from terminal.api import api

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", auth_views.LoginView.as_view(template_name="accounts/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    path("metrics", ExportToDjangoView, name="prometheus-django-metrics"),
    path("marketdata/", include("marketdata.urls")),
]
