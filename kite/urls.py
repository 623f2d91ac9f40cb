from django.urls import path

from kite import views

urlpatterns = [
    path("postback/", views.postback, name="kite-postback"),
]
