from django.urls import path

from marketdata.consumers import TickConsumer

websocket_urlpatterns = [
    path("ws/ticks/", TickConsumer.as_asgi()),
]
