"""The organisation's broker accounts page: Owners and Admins see each account's broker, mode and
session at the broker with Connect, and add accounts whose credentials are sealed at once; every
refusal is a 4xx with its message, and no secret is ever shown, logged or stored in clear."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from audit.models import AuditEvent
from brokers.models import BrokerAccount
from brokers.services.credentials import broker_credentials_get, broker_credentials_set
from brokers.services.sessions import session_end, session_start

pytestmark = pytest.mark.django_db
PAGE = "/orgs/acme/broker-accounts/"
ADD = "/orgs/acme/broker-accounts/add/"
API_KEY = "kiteapikey7x"
API_SECRET = "s3cret-kite-api-secret-0042"
KITE = {"broker": "kite", "label": "Zerodha main", "client_code": "AB1234", "kite-api_key": API_KEY}


@pytest.fixture
def signed_in(client, otp_login):
    def sign_in(user):
        return otp_login(client, user)

    return sign_in


def _kite(world, code="ZX0001", label="Zerodha"):
    account = BrokerAccount.objects.create(organisation=world.org, label=label, broker="kite", client_code=code)
    broker_credentials_set(account=account, credentials={"api_key": "k", "api_secret": "s"})
    return account


@pytest.mark.parametrize("who", ["owner", "admin"])
def test_an_owner_or_admin_sees_each_account_with_its_broker_mode_and_session(world, signed_in, who):
    never = _kite(world, "ZX0001", "Kite new")
    live = _kite(world, "ZX0002", "Kite live")
    lapsed = _kite(world, "ZX0003", "Kite lapsed")
    for account in (live, lapsed):
        session_start(account=account, secrets={"access_token": "t"}, expires_at=timezone.now() + timedelta(hours=3))
    session_end(account_id=lapsed.pk, reason="Kite: Token is invalid or has expired.")

    page = signed_in(getattr(world, who)).get(PAGE)
    html = page.content.decode()
    assert page.status_code == 200
    assert 'aria-current="page">Broker accounts</a>' in html

    def row(account):
        start = html.index(f'id="broker-account-{account.pk}"')
        return html[start : html.index("</tr>", start)]

    paper = row(world.account)
    assert ">paper<" in paper and ">Paper</span>" in paper and "no sign-in needed" in paper and "<button" not in paper
    assert ">kite<" in row(never) and ">Live</span>" in row(never)
    assert "Not signed in (never signed in)" in row(never)
    assert f'action="/brokers/accounts/{never.pk}/connect/"' in row(never) and ">Connect<" in row(never)
    assert "broker-session live" in row(live) and "Signed in until" in row(live) and ">Re-login<" in row(live)
    assert "Not signed in (Kite: Token is invalid or has expired.)" in row(lapsed) and ">Re-login<" in row(lapsed)
    # The add form offers every registered broker and the credentials each family's login names.
    assert '<option value="kite">' in html and '<option value="paper">' in html
    assert 'name="kite-api_key"' in html and 'name="kite-api_secret"' in html and 'type="password"' in html


def test_an_owner_adds_a_kite_account_whose_credentials_are_sealed_and_never_shown(world, signed_in):
    client = signed_in(world.owner)
    response = client.post(ADD, KITE | {"kite-api_secret": API_SECRET})
    account = BrokerAccount.objects.get(client_code="AB1234")
    assert response.status_code == 302 and response["Location"] == f"{PAGE}#broker-account-{account.pk}"
    assert (account.organisation, account.broker, account.label, account.is_paper) == (
        world.org,
        "kite",
        "Zerodha main",
        False,
    )
    assert broker_credentials_get(account=account) == {"api_key": API_KEY, "api_secret": API_SECRET}
    page = client.get(response["Location"]).content.decode()
    assert "Zerodha main was added" in page and API_KEY not in page and API_SECRET not in page
    event = AuditEvent.objects.get(action="broker_account.created")
    assert event.payload_data == {
        "organisation": "acme",
        "broker": "kite",
        "label": "Zerodha main",
        "client_code": "AB1234",
        "mode": "live",
        "credentials": ["api_key", "api_secret"],
    }
    assert event.actor == f"user:{world.owner.pk}" and event.target_id == str(account.pk)


def test_the_raw_database_columns_hold_no_plaintext_secret(world, signed_in):
    signed_in(world.admin).post(ADD, KITE | {"kite-api_secret": API_SECRET})
    with connection.cursor() as cursor:
        for table in ("brokers_brokeraccount", "compliance_auditevent"):
            cursor.execute(f"SELECT * FROM {table}")
            dump = repr(cursor.fetchall())
            assert API_SECRET not in dump and API_KEY not in dump, table
    stored = BrokerAccount.objects.get(client_code="AB1234").credentials_ciphertext
    assert stored and "api_secret" not in stored


def test_the_secret_is_not_logged_when_adding_succeeds_or_fails(world, signed_in, caplog):
    client = signed_in(world.owner)
    with caplog.at_level("DEBUG"):
        client.post(ADD, KITE | {"kite-api_secret": API_SECRET})
        client.post(ADD, KITE | {"kite-api_secret": API_SECRET})  # refused: the client code is taken
    assert API_SECRET not in caplog.text and API_KEY not in caplog.text


def test_a_paper_account_stores_no_credentials(world, signed_in):
    response = signed_in(world.owner).post(ADD, {"broker": "paper", "label": "Practice", "client_code": "P2"})
    assert response.status_code == 302
    account = BrokerAccount.objects.get(client_code="P2")
    assert account.is_paper and account.credentials_ciphertext == ""


@pytest.mark.parametrize(
    ("data", "status", "message"),
    [
        (KITE, 422, "API secret is required for a kite account."),
        (KITE | {"kite-api_secret": API_SECRET, "client_code": "AB 12;"}, 422, "letters and digits"),
        (KITE | {"kite-api_secret": API_SECRET, "broker": "sharekhan"}, 400, "Select a valid choice"),  # no API
        (KITE | {"kite-api_secret": API_SECRET, "label": "  "}, 400, "This field is required."),
        ({}, 400, "This field is required."),
    ],
    ids=["missing-secret", "bad-client-code", "unknown-broker", "empty-label", "empty"],
)
def test_bad_input_is_refused_in_the_form_with_its_message_and_nothing_is_created(
    world, signed_in, data, status, message
):
    response = signed_in(world.owner).post(ADD, data)
    html = response.content.decode()
    assert response.status_code == status and message in html
    assert 'id="add-broker-account"' in html  # the page, with the form to correct
    assert API_KEY not in html and API_SECRET not in html  # credentials are never rendered back
    assert not BrokerAccount.objects.exclude(pk=world.account.pk).exists()
    assert not AuditEvent.objects.filter(action="broker_account.created").exists()


def test_a_client_code_the_broker_already_has_is_refused_with_409(world, signed_in):
    client = signed_in(world.owner)
    assert client.post(ADD, KITE | {"kite-api_secret": API_SECRET}).status_code == 302
    again = client.post(ADD, KITE | {"kite-api_secret": "other", "label": "Again"})
    assert again.status_code == 409
    assert "kite already has an account with client code AB1234." in again.content.decode()
    assert BrokerAccount.objects.filter(client_code="AB1234").count() == 1


@pytest.mark.parametrize("who", ["trader", "viewer"])
def test_a_trader_or_viewer_can_neither_see_the_page_nor_add_an_account(world, signed_in, who):
    client = signed_in(getattr(world, who))
    page = client.get(PAGE)
    assert page.status_code == 403 and "Only the Owner and Admins" in page.content.decode()
    added = client.post(ADD, KITE | {"kite-api_secret": API_SECRET})
    assert added.status_code == 403 and "Only the Owner and Admins" in added.content.decode()
    assert not BrokerAccount.objects.filter(client_code="AB1234").exists()


def test_another_organisations_owner_gets_404(world, signed_in):
    from accounts.models import Membership, Organisation, Role, User

    other = Organisation.objects.create(name="Other", slug="other")
    stranger = User.objects.create_user("stranger")
    Membership.objects.create(user=stranger, organisation=other, role=Role.OWNER)
    client = signed_in(stranger)
    assert client.get(PAGE).status_code == 404
    assert client.post(ADD, KITE | {"kite-api_secret": API_SECRET}).status_code == 404
    assert not BrokerAccount.objects.filter(client_code="AB1234").exists()
