from django.contrib.auth.models import AbstractUser


class User(AbstractUser):
    """A person who signs in: trader, admin, compliance officer or viewer.

    Custom from the first migration so that profile fields (2FA state, organisation membership)
    can be added without swapping the user model later.
    """

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"
