from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q


class User(AbstractUser):
    """A person who signs in: trader, admin, compliance officer or viewer.

    Custom from the first migration so that profile fields (2FA state, organisation membership)
    can be added without swapping the user model later.
    """

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"


class Organisation(models.Model):
    """A firm, or one trader on their own: the boundary nobody's data crosses."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    TRADER = "trader", "Trader"
    VIEWER = "viewer", "Viewer"


class Membership(models.Model):
    """A user's place in an organisation, with exactly one role."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "organisation"], name="membership_one_per_user_and_org"),
            models.UniqueConstraint(
                fields=["organisation"], condition=Q(role="owner"), name="membership_one_owner_per_org"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} · {self.organisation} · {self.get_role_display()}"


class ApiKeyScope(models.TextChoices):
    READ = "read", "Read only"
    TRADE = "trade", "Read and trade"


class ApiKey(models.Model):
    """A credential for bots and webhooks, acting as its user within ``scope``.

    The key is ``atk_<prefix>_<secret>``: the prefix finds the row, the SHA-256 of the whole key is
    compared in constant time. The secret has 256 bits of entropy, so a fast hash is enough (a slow
    one protects guessable passwords, not random keys). ``allowed_ips`` holds addresses or CIDR
    networks; when not empty, requests from anywhere else are refused.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    secret_hash = models.CharField(max_length=64)
    scope = models.CharField(max_length=8, choices=ApiKeyScope.choices, default=ApiKeyScope.READ)
    allowed_ips = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} (atk_{self.prefix}_…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class RefreshToken(models.Model):
    """One refresh token of the API; each use replaces it with the next one of the same family.

    Stored as a SHA-256 hash. Presenting a token that was already used means it leaked: the whole
    family (and every access token carrying its ``fam`` claim) is revoked.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="refresh_tokens")
    family = models.UUIDField(db_index=True)
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"refresh token {self.pk} of {self.user_id} (family {self.family})"
