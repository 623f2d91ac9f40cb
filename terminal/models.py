"""The trader UI's own state: watchlists and saved baskets."""

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


MAX_BASKETS_PER_ACCOUNT = 50


class SavedBasket(models.Model):
    """A named basket of order legs a user keeps for one broker account, to preview and place together."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="baskets")
    account = models.ForeignKey("brokers.BrokerAccount", on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=40)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "account", "name"], name="savedbasket_unique_name_per_account")
        ]

    def __str__(self) -> str:
        return f"{self.user} · {self.name}"


class SavedBasketLeg(models.Model):
    """One order of a saved basket, as checked when it was saved (``orders.preview.check_legs``)."""

    basket = models.ForeignKey(SavedBasket, on_delete=models.CASCADE, related_name="legs")
    position = models.PositiveSmallIntegerField()
    instrument = models.ForeignKey("marketdata.Instrument", on_delete=models.PROTECT, related_name="+")
    side = models.CharField(max_length=4)
    quantity = models.PositiveIntegerField()
    order_type = models.CharField(max_length=8)
    product = models.CharField(max_length=8)
    price = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    trigger_price = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return f"{self.basket} · leg {self.position}"
