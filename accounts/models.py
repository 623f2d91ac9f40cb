import logging
from binascii import unhexlify

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models, transaction
from django.db.models import Q
from django_otp.plugins.otp_totp.models import TOTPDevice

from core import sealing

logger = logging.getLogger(__name__)


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
    # Reads every report, the audit trail and the exports of the organisation; trades and changes nothing.
    COMPLIANCE = "compliance", "Compliance"


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


class SealedTOTPDevice(TOTPDevice):
    """django-otp's TOTP device whose ``key`` column holds the seed sealed, never the seed itself.

    A proxy of otp_totp's TOTPDevice: the same table, fields, throttling and replay rule, with
    ``bin_key`` (which django-otp's ``verify_token`` and ``config_url`` read) opening the seal
    (core.sealing, AES-256-GCM under BROKER_ENCRYPTION_KEYS) bound to this row's id, so a
    copy of the database holds no usable seed and a sealed seed copied onto another row opens
    nowhere. Saving a hex seed (a new device's random default, the demo's derived one) seals it;
    the clear seed of a new row is never written, not even inside the transaction. A ``key`` that
    is not a seal this row opens (a clear seed left by an older release or written by hand) never
    verifies. All of accounts reaches TOTP devices through this class; django-otp's own class
    still loads them (sessions name either) but cannot read the seed.
    """

    class Meta:
        proxy = True
        verbose_name = "TOTP device"

    @property
    def key_binding(self) -> bytes:
        """The associated data that ties the sealed seed to this row (frozen in migration 0006)."""
        return f"otp_totp.totpdevice|{self.pk}|key".encode()

    @property
    def bin_key(self) -> bytes:
        """The seed; raises sealing.SecretError when ``key`` is not a seal this row opens."""
        return sealing.decrypt(self.key, associated_data=self.key_binding)

    @property
    def seed_is_sealed(self) -> bool:
        return sealing.is_sealed(self.key)

    def verify_token(self, token) -> bool:
        """django-otp's check; False, and logged with its cause, when the seed cannot be opened."""
        try:
            self.bin_key  # noqa: B018 - opened here to refuse an unreadable seed; django-otp reads it again
        except sealing.SecretError as exc:
            logger.error("TOTP device %s: %s (%s); its codes are refused", self.pk, exc.message, exc.code)
            return False
        return super().verify_token(token)

    def seed_seal(self, seed: bytes) -> None:
        """Set ``key`` to ``seed`` sealed under the current key for this saved row; ValueError if it cannot fit."""
        sealed = sealing.encrypt(seed, associated_data=self.key_binding)
        if len(sealed) > self._meta.get_field("key").max_length:
            raise ValueError(
                f"a {len(seed)}-byte TOTP seed sealed under key {sealing.key_id_of(sealed)!r} does not fit "
                "otp_totp's key column; seeds are 20 bytes and key ids at most 11 characters (accounts.E001)"
            )
        self.key = sealed

    def save(self, *args, **kwargs) -> None:
        """Save, sealing a hex seed first; raises ValueError for a key that is neither sealed nor hex."""
        update_fields = kwargs.get("update_fields")
        if self.seed_is_sealed or (update_fields is not None and "key" not in update_fields):
            return super().save(*args, **kwargs)
        try:
            seed = unhexlify(self.key)
        except ValueError:
            raise ValueError("a TOTP seed is given in hex") from None
        with transaction.atomic():
            if self.pk is None:
                self.key = ""  # the row's id binds the seal, so it is inserted first, without the seed
                super().save(*args, **kwargs)
                self.seed_seal(seed)
                type(self).objects.filter(pk=self.pk).update(key=self.key)
            else:
                self.seed_seal(seed)
                super().save(*args, **kwargs)
