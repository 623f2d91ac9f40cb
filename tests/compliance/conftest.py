import pytest

from tests.trading_world import (
    World,
    _fresh_trading_state,  # noqa: F401 (autouse: no quotes, cached limits or faults)
)


@pytest.fixture(autouse=True)
def checkpoint_dir(settings, tmp_path):
    """Each test gets its own, empty checkpoint storage."""
    location = tmp_path / "audit_checkpoints"
    settings.STORAGES = {
        **settings.STORAGES,
        "audit_checkpoints": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(location)},
        },
    }
    return location


@pytest.fixture
def world(db) -> World:
    """The trading world of tests/trading_world.py (organisation "acme", its members and accounts)."""
    return World()


@pytest.fixture
def signed_in(client, otp_login):
    """``signed_in(user)``: the test client, signed in as ``user`` with both factors."""

    def sign_in(user):
        return otp_login(client, user)

    return sign_in


@pytest.fixture
def app_role():
    """A fresh application role made by deploy/postgres/app_role.sql (PostgreSQL), dropped afterwards."""
    from tests.compliance.roles import drop_role, make_app_role

    role = make_app_role()
    yield role
    drop_role(role)


@pytest.fixture
def officer(world):
    """A Compliance member of the world's organisation ("officer")."""
    from accounts.models import Membership, Role, User

    user = User.objects.create_user("officer")
    Membership.objects.create(user=user, organisation=world.org, role=Role.COMPLIANCE)
    return user
