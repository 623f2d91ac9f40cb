"""REST API v1 for backtests and sweeps: queue, read, list, trades as CSV, compare; sweeps created,
read with progress and ranking; refusals as {"code", "message", "extra"} with a 4xx naming the field."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strategies import tasks
from strategies.models import BacktestRun, BacktestSweep
from strategies.services import sweeps
from tests.strategies.test_api_strategies import Api, _error

pytestmark = pytest.mark.django_db

DAY = "2026-03-02"


@pytest.fixture
def api(world):
    return Api(world.trader, world.org.slug)


@pytest.fixture
def sent(monkeypatch):
    queued: list[int] = []
    monkeypatch.setattr(sweeps, "send_run", queued.append)
    return queued


def _body(ema, **overrides):
    return {"definition_id": ema.pk, "instruments": ["NSE:INFY"], "start": DAY, "end": DAY} | overrides


def test_a_backtest_is_queued_run_and_read_with_its_report_and_trades_as_csv(
    api, ema, sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        created = api.call("POST", "/backtests", _body(ema, settings={"fill_mode": "close", "slippage_bps": 5}))
    assert created.status_code == 201, created.content
    run = created.json()
    assert run["status"] == "queued" and run["settings"]["fill_mode"] == "close" and sent == [run["id"]]

    assert tasks.run_backtest(run["id"]) == "done"
    read = api.call("GET", f"/backtests/{run['id']}").json()
    assert read["status"] == "done" and read["progress"] == 100
    assert read["result"]["trades"] == len(read["trades"]) > 0
    assert read["equity"] and len(read["equity"][0]) == 3

    exported = api.call("GET", f"/backtests/{run['id']}/trades.csv")
    assert exported.status_code == 200 and exported["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.content.decode())))
    assert len(rows) == read["result"]["trades"] and rows[0]["net_pnl"] == read["trades"][0]["net_pnl"]

    listed = api.call("GET", "/backtests").json()
    assert [r["id"] for r in listed] == [run["id"]] and "equity" not in listed[0]


def test_two_backtests_are_compared_metric_by_metric(api, ema, sent):
    a = api.call("POST", "/backtests", _body(ema)).json()["id"]
    b = api.call("POST", "/backtests", _body(ema, params=ema.params | {"fast": 5, "slow": 13})).json()["id"]
    tasks.run_backtest(a), tasks.run_backtest(b)
    compared = api.call("GET", f"/backtests/compare?a={a}&b={b}")
    assert compared.status_code == 200, compared.content
    body = compared.json()
    assert body["a"]["id"] == a and body["b"]["id"] == b
    pairs = {row["metric"]: (row["a"], row["b"]) for row in body["metrics"]}
    assert pairs["net_pnl"] == (
        BacktestRun.objects.get(pk=a).result["net_pnl"],
        BacktestRun.objects.get(pk=b).result["net_pnl"],
    )
    _error(api.call("GET", f"/backtests/compare?a={a}"), 422, "backtest_invalid")
    _error(api.call("GET", f"/backtests/compare?a={a}&b=987654"), 404, "backtest_not_found")


@pytest.mark.parametrize(
    ("overrides", "code", "field"),
    [
        ({"instruments": ["NSE:NOPE"]}, "backtest_invalid", "instruments.0"),
        ({"instruments": ["garbage!"]}, "backtest_invalid", "instruments.0"),
        ({"start": "2026-02-01", "end": "2026-02-03"}, "backtest_no_data", "start"),
        ({"start": "2026-03-05", "end": "2026-03-02"}, "backtest_invalid", "start"),
        ({"start": "yesterday"}, "backtest_invalid", "start"),
        ({"params": {"fast": 0}}, "strategy_invalid", "instrument"),  # params replace the definition's
        ({"settings": {"fill_mode": "whenever"}}, "backtest_invalid", "settings.fill_mode"),
        ({"settings": {"slippage_bps": 10**30}}, "backtest_invalid", "settings.slippage_bps"),
        ({"definition_id": 987654}, "backtest_invalid", "definition_id"),
    ],
)
def test_bad_backtest_input_is_a_422_naming_the_field(api, ema, sent, overrides, code, field):
    body = _error(api.call("POST", "/backtests", _body(ema, **overrides)), 422, code)
    assert body["extra"]["field"] == field
    assert not BacktestRun.objects.exists() and sent == []


def test_a_viewer_reads_backtests_but_may_not_queue_one(world, ema, sent):
    viewer = Api(world.viewer, world.org.slug)
    _error(viewer.call("POST", "/backtests", _body(ema)), 403, "backtest_forbidden")
    assert viewer.call("GET", "/backtests").status_code == 200


def test_a_backtest_that_is_not_there_is_not_found(api, ema, sent):
    _error(api.call("GET", "/backtests/0"), 404, "backtest_not_found")
    _error(api.call("GET", "/backtests/99999999/trades.csv"), 404, "backtest_not_found")


def test_a_sweep_is_started_and_read_with_its_progress_and_ranking(api, ema, sent):
    created = api.call("POST", "/sweeps", _body(ema, grid={"fast": [3, 5], "slow": [8, 13]}, metric="net_pnl"))
    assert created.status_code == 201, created.content
    sweep = created.json()
    assert sweep["progress"] == {"total": 4, "queued": 4, "running": 0, "done": 0, "failed": 0, "percent": 0}
    assert [row["rank"] for row in sweep["ranking"]] == [None] * 4
    for run_id in BacktestRun.objects.filter(sweep_id=sweep["id"]).values_list("pk", flat=True):
        tasks.run_backtest(run_id)
    read = api.call("GET", f"/sweeps/{sweep['id']}").json()
    assert read["status"] == "done" and read["progress"]["percent"] == 100
    assert [row["rank"] for row in read["ranking"]] == [1, 2, 3, 4]
    values = [float(row["value"]) for row in read["ranking"]]
    assert values == sorted(values, reverse=True)
    assert [s["id"] for s in api.call("GET", "/sweeps").json()] == [sweep["id"]]


def test_an_oversize_sweep_is_a_422_naming_its_size_before_anything_runs(api, ema, sent, settings):
    settings.STRATEGIES_SWEEP_MAX_RUNS = 10
    grid = {"fast": [1, 2, 3, 4], "slow": [8, 13, 21]}
    body = _error(api.call("POST", "/sweeps", _body(ema, grid=grid)), 422, "sweep_too_large")
    assert body["extra"] == {"field": "grid", "runs": 12, "max_runs": 10} and "12" in body["message"]
    assert not BacktestSweep.objects.exists() and not BacktestRun.objects.exists() and sent == []


@pytest.mark.parametrize(
    ("overrides", "code", "field"),
    [
        ({"grid": {"fast": [3, 9]}}, "strategy_invalid", "fast"),
        ({"grid": {"fast": []}}, "sweep_invalid", "grid.fast"),
        ({"grid": {}}, "sweep_invalid", "grid"),
        ({"grid": {"fast": [3]}, "metric": "luck"}, "sweep_invalid", "metric"),
        ({"grid": {"fast": [3]}, "instruments": "NSE:NOPE"}, "backtest_invalid", "instruments.0"),
    ],
)
def test_bad_sweep_input_is_a_422_naming_the_field(api, ema, sent, overrides, code, field):
    body = _error(api.call("POST", "/sweeps", _body(ema, **overrides)), 422, code)
    assert body["extra"]["field"] == field
    assert not BacktestSweep.objects.exists()


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    grid=st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
        max_leaves=12,
    )
)
def test_any_json_grid_gets_a_created_sweep_or_a_4xx_with_a_code(world, ema, grid):
    api = Api(world.trader, world.org.slug)
    response = api.call("POST", "/sweeps", _body(ema, grid=grid))
    assert response.status_code in (201, 400, 422), response.content
    if response.status_code == 422:
        assert set(response.json()) == {"code", "message", "extra"}
