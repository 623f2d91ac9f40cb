"""The trader UI's own state: watchlists."""

from django.conf import settings
from django.db import models

MAX_WATCHLISTS_PER_USER = 5
MAX_ITEMS_PER_WATCHLIST = 50
MAX_WATCHLIST_NAME = 40


class Watchlist(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="watchlists")
    name = models.CharField(max_length=MAX_WATCHLIST_NAME)
    position = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    # The list the user last opened is the one the dashboard shows next time.
    opened_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["position", "id"]
        constraints = [models.UniqueConstraint(fields=["user", "name"], name="watchlist_unique_name_per_user")]

    def __str__(self) -> str:
        return f"{self.user} · {self.name}"


class WatchlistItem(models.Model):
    watchlist = models.ForeignKey(Watchlist, on_delete=models.CASCADE, related_name="items")
    instrument = models.ForeignKey("marketdata.Instrument", on_delete=models.CASCADE, related_name="+")
    position = models.PositiveSmallIntegerField(default=0)
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["watchlist", "instrument"], name="watchlistitem_unique_instrument")
        ]

    def __str__(self) -> str:
        return f"{self.watchlist} · {self.instrument_id}"
