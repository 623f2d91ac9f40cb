"""Every report's filters under hostile query strings: an answer of 200 or 422 (a field-named code),
never a 500; and the order-to-trade ratio's algo id and source filters."""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import urlencode

import pytest
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compliance.selectors import order_to_trade_list
from orders.services import place_order
from tests.compliance.exporting import csv_rows
from tests.otp_session import login_with_otp

pytestmark = pytest.mark.django_db
PAGES = ("audit/", "trades/", "order-to-trade/", "algos/", "rms-rejections/", "kill-switch/", "logins/")
FIELDS = ("from", "to", "account", "algo", "source", "actor", "action", "target", "rule", "event", "state", "ip", "org")
# Text without NUL (refused before any view, 400 nul_byte) and without surrogates (not URL-encodable).
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=60)
VALUES = st.one_of(
    TEXT,
    st.dates().map(str),
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
    st.sampled_from(["2025-02-30", "9999-12-31", "0001-01-01", "auth.", "web", "on", "login", "::1", "-1", "1e9"]),
)


@given(page=st.sampled_from(PAGES), query=st.dictionaries(st.sampled_from(FIELDS), VALUES, max_size=5))
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_hostile_filters_get_a_report_or_a_422_never_a_500(world, page, query):
    client = login_with_otp(Client(), world.owner)
    for suffix in ("", "export/"):
        response = client.get(f"/orgs/acme/compliance/{page}{suffix}?{urlencode(query)}")
        assert response.status_code in (200, 422), (page, suffix, query, response.status_code)
        if response.status_code == 422:
            assert b'data-code="' in response.content


def test_the_order_to_trade_ratio_filters_by_algo_id_and_source(world, signed_in):
    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    for algo, source in (("ALGO-1", "strategy"), ("ALGO-1", "strategy"), ("GENERIC", "web")):
        request = world.request(world.equity, price=Decimal("990"), algo_id=algo)
        place_order(actor=world.trader, account=world.account, request=request, source=source)
    today = timezone.localdate()

    def orders(**filters) -> int:
        return sum(
            r.orders for r in order_to_trade_list(organisation=world.org, date_from=today, date_to=today, **filters)
        )

    assert (orders(), orders(algo_id="ALGO-1"), orders(source="web"), orders(algo_id="ALGO-1", source="web")) == (
        3,
        2,
        1,
        0,
    )
    client = signed_in(world.owner)
    html = client.get("/orgs/acme/compliance/order-to-trade/?algo=ALGO-1&source=strategy").content.decode()
    assert '<td class="num orders">2</td>' in html and 'value="ALGO-1"' in html
    body = b"".join(client.get("/orgs/acme/compliance/order-to-trade/export/?algo=GENERIC").streaming_content)
    assert csv_rows(body)[1][2] == "1"
    assert client.get("/orgs/acme/compliance/order-to-trade/?source=fax").status_code == 422
