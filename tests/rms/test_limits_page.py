"""The organisation's risk limits page: Owner and Admin read and save each scope (HTMX or plain
POST), bad input is shown in the form with a 422 and writes nothing, and the next order obeys."""

from decimal import Decimal

import pytest

from accounts.models import Membership, Organisation, Role
from audit.models import AuditEvent
from brokers.models import BrokerAccount
from orders.services import place_order
from rms.errors import RiskRejected
from rms.models import RiskLimit

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}
EMPTY = {
    "max_order_quantity": "",
    "max_order_value": "",
    "max_open_orders": "",
    "max_daily_loss": "",
    "max_orders_per_second": "",
    "max_ltp_deviation_pct": "",
}


@pytest.fixture
def signed_in(client, otp_login):
    def sign_in(user):
        return otp_login(client, user)

    return sign_in


def _urls(world):
    return {
        "organisation": "/orgs/acme/limits/organisation/",
        "account": f"/orgs/acme/limits/accounts/{world.account.pk}/",
        "user": f"/orgs/acme/limits/members/{world.trader.pk}/",
    }


@pytest.mark.parametrize("who", ["owner", "admin"])
def test_an_owner_or_admin_sees_every_scope_and_how_limits_combine(world, signed_in, who):
    RiskLimit.objects.create(max_order_value=Decimal("5000000"))  # everyone
    RiskLimit.objects.create(account=world.account, max_open_orders=7, allowed_products="MIS")
    page = signed_in(getattr(world, who)).get("/orgs/acme/limits/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "The strictest value wins" in html and 'id="limits-everyone"' in html and "50,00,000.00" in html
    for form_id in ("limits-organisation", f"limits-account-{world.account.pk}", f"limits-user-{world.trader.pk}"):
        assert f'id="{form_id}"' in html
    assert 'name="max_open_orders" type="number" min="0" step="any" value="7"' in html
    assert 'name="allowed_products" value="MIS" checked' in html
    assert html.count('class="limits-form"') == 1 + 1 + 4  # the organisation, its account, its four members


@pytest.mark.parametrize("scope", ["organisation", "account", "user"])
def test_saving_one_scope_by_htmx_swaps_its_form_with_the_saved_values(world, signed_in, scope):
    client = signed_in(world.admin)
    data = EMPTY | {"max_order_quantity": "100", "max_daily_loss": "2500.50", "allowed_exchanges": ["NSE", "NFO"]}
    response = client.post(_urls(world)[scope], data, **HX)
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html and html.lstrip().startswith("<form")
    assert 'role="status">Saved.' in html
    assert 'name="max_order_quantity" type="number" min="0" step="any" value="100"' in html
    assert 'value="2500.50"' in html and 'value="NFO" checked' in html and 'value="BSE">' in html
    row = RiskLimit.objects.get()
    assert (row.max_order_quantity, row.max_daily_loss, row.allowed_exchanges) == (100, Decimal("2500.50"), "NSE,NFO")
    event = AuditEvent.objects.get(action="rms.limits_changed")
    assert event.payload_data["scope"] == scope and event.payload_data["after"]["max_order_quantity"] == 100


def test_a_plain_post_saves_and_comes_back_to_the_page_at_that_form(world, signed_in):
    client = signed_in(world.owner)
    response = client.post(_urls(world)["account"], EMPTY | {"max_open_orders": "3"})
    assert response.status_code == 302
    assert response["Location"] == f"/orgs/acme/limits/#limits-account-{world.account.pk}"
    page = client.get(response["Location"])
    assert "The limits of Paper were saved." in page.content.decode()
    assert RiskLimit.objects.get(account=world.account).max_open_orders == 3


@pytest.mark.parametrize(
    ("data", "code", "message"),
    [
        ({"max_order_quantity": "-5"}, "limit_negative", "Max order quantity cannot be negative."),
        ({"max_order_value": "ten lakh"}, "limit_not_a_number", "Max order value (₹) must be a number."),
        ({"allowed_exchanges": ["NSE", "LSE"]}, "exchange_unknown", "Unknown exchange LSE"),
        ({"allowed_products": ["CO"]}, "product_unknown", "Unknown product CO"),
    ],
)
def test_bad_input_is_a_422_in_the_form_and_writes_nothing(world, signed_in, data, code, message):
    client = signed_in(world.owner)
    url = _urls(world)["organisation"]
    for headers in (HX, {}):
        response = client.post(url, EMPTY | {"max_open_orders": "4"} | data, **headers)
        html = response.content.decode()
        assert response.status_code == 422
        assert f'role="alert" data-code="{code}"' in html and message in html
        assert 'aria-invalid="true"' in html and 'value="4"' in html  # what was typed stays
        assert ("<html" in html) == (headers == {})  # plain POST: the whole page, with this form's errors
    assert not RiskLimit.objects.exists() and not AuditEvent.objects.filter(action="rms.limits_changed").exists()


@pytest.mark.parametrize("who", ["trader", "viewer"])
def test_traders_and_viewers_get_403(world, signed_in, who):
    client = signed_in(getattr(world, who))
    assert client.get("/orgs/acme/limits/").status_code == 403
    for url in _urls(world).values():
        assert client.post(url, EMPTY | {"max_order_quantity": "1"}, **HX).status_code == 403
    assert not RiskLimit.objects.exists()


def test_another_organisation_and_its_accounts_are_not_found(world, signed_in, django_user_model):
    other = Organisation.objects.create(name="Other", slug="other")
    theirs = BrokerAccount.objects.create(organisation=other, label="Theirs", broker="paper", client_code="T1")
    stranger = django_user_model.objects.create_user("other-owner")
    Membership.objects.create(user=stranger, organisation=other, role=Role.OWNER)
    client = signed_in(stranger)
    assert client.get("/orgs/acme/limits/").status_code == 404
    assert client.post(_urls(world)["organisation"], EMPTY | {"max_order_quantity": "1"}).status_code == 404
    owner = signed_in(world.owner)
    assert (
        owner.post(f"/orgs/acme/limits/accounts/{theirs.pk}/", EMPTY | {"max_order_quantity": "1"}).status_code == 404
    )
    assert (
        owner.post(f"/orgs/acme/limits/members/{stranger.pk}/", EMPTY | {"max_order_quantity": "1"}).status_code == 404
    )
    assert not RiskLimit.objects.exists()


def test_an_owners_limit_refuses_the_traders_next_order_above_it(world, signed_in):
    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    client = signed_in(world.owner)
    client.post(_urls(world)["user"], EMPTY | {"max_order_quantity": "5"}, **HX)
    with pytest.raises(RiskRejected) as refused:
        place_order(
            actor=world.trader, account=world.account, request=world.request(world.equity, quantity=6), source="web"
        )
    assert refused.value.code == "max_order_quantity"
    order = place_order(
        actor=world.trader, account=world.account, request=world.request(world.equity, quantity=5), source="web"
    )
    assert order.quantity == 5


def test_the_members_page_and_the_profile_link_to_the_limits_page(world, signed_in):
    client = signed_in(world.admin)
    assert 'href="/orgs/acme/limits/"' in client.get("/orgs/acme/members/").content.decode()
    assert 'href="/orgs/acme/limits/"' in client.get("/account/").content.decode()
    assert 'href="/orgs/acme/members/"' in client.get("/orgs/acme/limits/").content.decode()
