from django.urls import path

from marketdata import views

app_name = "marketdata"
urlpatterns = [
    path("watchlist/", views.watchlist, name="watchlist"),
]
