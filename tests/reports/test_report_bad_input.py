"""Whatever the report filters hold, the API answers 200 or 422 naming the refused field, never a 500."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.trading_world import _fresh_trading_state, world  # noqa: F401

ANY_TEXT = st.one_of(
    st.text(max_size=80),
    st.dates().map(str),
    st.integers().map(str),
    st.sampled_from(["", "2025-02-30", "0000-01-01", "9999-12-31", "2025-1-1", "2025-26", "+2025"]),
    st.just("\uff12\uff10\uff12\uff15"),  # 2025 in full-width digits
)
FIELDS = {"from", "to", "symbol", "segment", "side", "product", "fy"}


def _checked(response) -> None:
    if response.status_code == 400:  # a NUL byte anywhere: the request guard refuses it before any view
        assert response.json()["code"] == "nul_byte"
        return
    assert response.status_code in (200, 422), response.content[:300]
    if response.status_code == 422:
        body = response.json()
        assert body["code"] and body["message"] and set(body["extra"]["fields"]) <= FIELDS


@pytest.mark.django_db
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(date_from=ANY_TEXT, date_to=ANY_TEXT, symbol=ANY_TEXT, side=ANY_TEXT, fy=ANY_TEXT)
def test_the_report_routes_refuse_any_bad_filter_with_a_422_naming_it(
    client,
    world,  # noqa: F811
    otp_login,
    date_from,
    date_to,
    symbol,
    side,
    fy,
):
    if not client.cookies.get("sessionid"):  # the fixtures are shared by every example: sign in once
        otp_login(client, world.trader)
    base = f"/api/v1/accounts/{world.account.pk}"
    query = {"from": date_from, "to": date_to}
    _checked(client.get(f"{base}/pnl", query))
    _checked(client.get(f"{base}/tradebook", query | {"symbol": symbol, "side": side}))
    _checked(client.get(f"{base}/tax-pnl", {"fy": fy}))
