import pytest
from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError

from accounts.models import User


def test_argon2_is_the_first_password_hasher():
    assert settings.PASSWORD_HASHERS[0] == "django.contrib.auth.hashers.Argon2PasswordHasher"


@pytest.mark.django_db
def test_stored_password_hashes_start_with_argon2():
    user = User.objects.create_user("hash-check", password="long-password-123")
    user.refresh_from_db()
    assert user.password.startswith("argon2")


def test_weak_passwords_are_refused_by_the_validators():
    for weak in ("password", "12345678901", "short"):
        with pytest.raises(ValidationError):
            validate_password(weak)
