"""/api/v1/backtests: queue a run (a worker runs it), follow it, read its results and report, delete it."""

from decimal import Decimal

import pytest

from app.extensions import db
from app.jobs.backtests import run_queued_backtest
from app.models import Backtest, BacktestStatus
from app.services import backtests
from app.services.backtests import BacktestRequest
from tests import factories
from tests.api.conftest import ApiClient, issue

URL = "/api/v1/backtests"
SMALL = {
    "symbol": "BTC/USDT",
    "timeframe": "1h",
    "signal_source": "rules:sma_cross",
    "start": "2024-03-01",
    "end": "2024-03-14",
    "balance": "1000",
}


@pytest.fixture
def btc(api_app):
    factories.candles(db.session)
    db.session.commit()


def queued(user, **changes) -> int:
    """A backtest of `user` recorded QUEUED through the service, as POST does."""
    from app import current_settings

    fields = {**SMALL, **changes}
    request = BacktestRequest(
        user_id=user.id,
        symbol=fields["symbol"],
        timeframe=fields["timeframe"],
        signals=fields["signal_source"],
        start=fields["start"],
        end=fields["end"],
        balance=fields["balance"],
    )
    record = backtests.create_backtest(db.session, current_settings(), request)
    db.session.commit()
    return record.id


def test_post_queues_a_run_that_a_worker_finishes_with_results_and_a_report(api_app, caller, btc):
    response = caller.post(URL, json={**SMALL, "params": {"fast": "5", "slow": "20"}, "fee_rate": 0.002})
    assert response.status_code == 202, response.json
    queued_run = response.json
    assert response.headers["Location"] == f"{URL}/{queued_run['id']}"
    assert queued_run["status"] == "queued" and queued_run["progress"] == 0
    assert queued_run["symbol"] == "BTC/USDT" and queued_run["signal_source"] == "rules:sma_cross"
    assert queued_run["params"] == {"fast": "5", "slow": "20"}
    record = db.session.get(Backtest, queued_run["id"])
    assert record.user_id == caller.user.id and record.status is BacktestStatus.QUEUED
    assert record.settings["request"]["fee_rate"] == "0.002" and record.settings["request"]["balance"] == "1000"

    # Nothing ran in the request: the record waits for a worker, and there is no report yet.
    waiting = caller.get(response.headers["Location"]).json
    assert waiting["status"] == "queued" and waiting["results"] is None
    report = caller.get(f"{URL}/{queued_run['id']}/report")
    assert report.status_code == 404 and report.json["error"]["code"] == "NOT_FOUND"
    assert "queued" in report.json["error"]["message"]

    assert run_queued_backtest(api_app, queued_run["id"], "test-worker") is True

    done = caller.get(f"{URL}/{queued_run['id']}").json
    assert done["status"] == "succeeded" and done["progress"] == 1 and done["error_message"] is None
    assert done["window_start"].startswith("2024-03-01") and done["window_end"].startswith("2024-03-14")
    results = done["results"]
    assert results["metrics"]["trades"] == len(results["trades"]) > 0
    assert set(results["baselines"]) >= {"buy_and_hold"}
    assert results["ai"] == {
        "decisions": 0,
        "cache_hits": 0,
        "cache_misses": 0,
        "cost_usd": "0",
        "estimated_cost_usd": None,
    }
    first = results["trades"][0]
    assert first["entry_time"] >= "2024-03-01" and Decimal(first["fees"]) > 0
    assert results["settings"]["starting_balance"] in ("1000", 1000)
    assert results["report_url"] == f"{URL}/{queued_run['id']}/report"

    page = caller.get(results["report_url"])
    assert page.status_code == 200 and page.mimetype == "text/html"
    text = page.get_data(as_text=True)
    assert text.startswith("<!doctype html>") and "BTC/USDT" in text

    # A second delivery of the same job runs nothing.
    assert run_queued_backtest(api_app, queued_run["id"], "other-worker") is False


def test_a_repeated_post_with_the_same_idempotency_key_queues_one_run(caller, btc):
    headers = {"Idempotency-Key": "backtest-march"}
    first = caller.post(URL, json=SMALL, headers=headers)
    again = caller.post(URL, json=SMALL, headers=headers)
    assert first.status_code == again.status_code == 202
    assert again.json["id"] == first.json["id"] and again.headers["Location"] == first.headers["Location"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert db.session.query(Backtest).count() == 1


def test_a_run_that_fails_in_the_worker_says_why(api_app, caller, btc):
    backtest_id = queued(caller.user)
    # A stored request the service no longer accepts (as after an upgrade tightened a check): it fails in the worker.
    record = db.session.get(Backtest, backtest_id)
    record.settings = {"request": {**record.settings["request"], "balance": "-1"}}
    db.session.commit()
    run_queued_backtest(api_app, backtest_id, "test-worker")
    failed = caller.get(f"{URL}/{backtest_id}").json
    assert failed["status"] == "failed" and failed["results"] is None
    assert failed["error_message"].startswith("preparing: balance must be a positive amount")
    assert caller.get(f"{URL}/{backtest_id}/report").status_code == 404


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"symbol": "ETH/USDT"}, "symbol"),  # no candles stored for it
        ({"symbol": "DOGE/USDT"}, "symbol"),  # not a market
        ({"timeframe": "7h"}, "timeframe"),
        ({"signal_source": "rules:nope"}, "signal_source"),
        ({"signal_source": "rules:sma_cross->rules:rsi_reversion"}, "signal_source"),
        ({"params": {"fast": "many"}}, "params"),
        ({"start": "2024-03-14", "end": "2024-03-01"}, "end"),
        ({"start": "2030-01-01", "end": None}, "start"),
        ({"start": "March"}, "start"),
        ({"every": 0}, "every"),
        ({"balance": "-5"}, "balance"),
        ({"balance": "lots"}, "balance"),
        ({"fee_rate": "0.5"}, "fee_rate"),
        ({"risk": {"no_such_setting": 1}}, "risk"),
        ({"max_gap_bars": -1}, "max_gap_bars"),
        ({"data_file": "/etc/passwd"}, "data_file"),  # the API reads the candle store only
        ({"exchange": "nowhere"}, "exchange"),
        ({"signal_source": "deepseek"}, "max_cost_usd"),  # a paid run needs an allowance
        ({"symbol": None}, "symbol"),
    ],
)
def test_bad_input_is_422_naming_the_field_and_records_nothing(caller, btc, change, field):
    response = caller.post(URL, json={**SMALL, **change})
    assert response.status_code == 422, response.json
    assert response.json["error"]["code"] == "INVALID_INPUT"
    assert response.json["error"]["details"]["field"] == field
    assert db.session.query(Backtest).count() == 0


def test_a_paid_run_estimated_above_max_cost_is_402_before_anything_is_recorded(caller, btc):
    response = caller.post(URL, json={**SMALL, "signal_source": "deepseek", "max_cost_usd": "0.000001"})
    assert response.status_code == 402
    error = response.json["error"]
    assert error["code"] == "BUDGET_EXCEEDED" and error["details"]["field"] == "max_cost_usd"
    assert error["details"]["cap_usd"] == "0.000001"
    assert Decimal(error["details"]["estimate_usd"]) > Decimal("0.000001")
    assert db.session.query(Backtest).count() == 0


def test_keys_need_analyze_to_queue_or_delete_and_read_to_look(api_app, caller, btc):
    backtest_id = queued(caller.user)
    anonymous = ApiClient(api_app, None)
    for method, path in (
        ("POST", URL),
        ("GET", URL),
        ("GET", f"{URL}/{backtest_id}"),
        ("GET", f"{URL}/{backtest_id}/report"),
        ("DELETE", f"{URL}/{backtest_id}"),
    ):
        response = anonymous.request(method, path, json=SMALL if method == "POST" else None)
        assert response.status_code == 401, (method, path)
        assert response.json["error"]["code"] == "UNAUTHORIZED"

    reader = ApiClient(api_app, issue(caller.user, ["read"]))
    for response in (reader.post(URL, json=SMALL), reader.delete(f"{URL}/{backtest_id}")):
        assert response.status_code == 403
        assert response.json["error"]["details"]["required_scope"] == "analyze"
    assert reader.get(f"{URL}/{backtest_id}").json["id"] == backtest_id
    assert db.session.query(Backtest).count() == 1

    trader = ApiClient(api_app, issue(caller.user, ["trade"]))  # trade does not include read
    assert trader.get(URL).status_code == 403


def test_the_list_pages_newest_first_and_shows_only_the_callers_runs(caller, stranger, btc):
    mine = [queued(caller.user) for _ in range(3)]
    theirs = queued(stranger.user)
    first = caller.get(f"{URL}?limit=2")
    assert first.status_code == 200
    assert [b["id"] for b in first.json["items"]] == [mine[2], mine[1]]
    cursor = first.json["next_cursor"]
    assert cursor
    second = caller.get(f"{URL}?limit=2&cursor={cursor}").json
    assert [b["id"] for b in second["items"]] == [mine[0]] and second["next_cursor"] is None
    assert [b["id"] for b in stranger.get(URL).json["items"]] == [theirs]

    for query, field in (("limit=0", "limit"), ("limit=201", "limit"), ("cursor=zzz", "cursor"), ("x=1", "x")):
        response = caller.get(f"{URL}?{query}")
        assert response.status_code == 422 and response.json["error"]["details"]["field"] == field


def test_someone_elses_backtest_is_404_on_every_route(api_app, caller, stranger, btc):
    theirs = queued(stranger.user)
    run_queued_backtest(api_app, theirs, "test-worker")
    assert stranger.get(f"{URL}/{theirs}/report").status_code == 200
    for response in (
        caller.get(f"{URL}/{theirs}"),
        caller.get(f"{URL}/{theirs}/report"),
        caller.delete(f"{URL}/{theirs}"),
        caller.get(f"{URL}/999999"),
    ):
        assert response.status_code == 404
        assert response.json["error"]["code"] == "NOT_FOUND"
        assert response.json["error"]["details"]["field"] == "backtest_id"
    assert db.session.get(Backtest, theirs) is not None
    for path in (f"{URL}/0", f"{URL}/99999999999", f"{URL}/99999999999/report"):
        response = caller.get(path)
        assert response.status_code == 422 and response.json["error"]["details"]["field"] == "backtest_id"


def test_delete_drops_a_queued_or_finished_run_with_its_files_but_not_a_running_one(api_app, caller, btc):
    from app import current_settings

    finished = queued(caller.user)
    run_queued_backtest(api_app, finished, "test-worker")
    folder = backtests.reports_dir(current_settings(), finished)
    assert (folder / "report.html").is_file()
    response = caller.delete(f"{URL}/{finished}")
    assert response.status_code == 204 and response.get_data() == b""
    assert not folder.exists()
    assert caller.get(f"{URL}/{finished}").status_code == 404

    waiting = queued(caller.user)
    assert caller.delete(f"{URL}/{waiting}").status_code == 204
    assert run_queued_backtest(api_app, waiting, "test-worker") is False  # the job finds nothing to run

    running = queued(caller.user)
    db.session.get(Backtest, running).status = BacktestStatus.RUNNING
    db.session.commit()
    response = caller.delete(f"{URL}/{running}")
    assert response.status_code == 409 and response.json["error"]["code"] == "CONFLICT"
    db.session.expire_all()
    assert db.session.get(Backtest, running) is not None


def test_the_report_is_documented_as_html(api_app):
    document = api_app.test_client().get("/api/v1/openapi.json").json
    report = document["paths"]["/api/v1/backtests/{backtest_id}/report"]["get"]
    assert "text/html" in report["responses"]["200"]["content"]
    post = document["paths"]["/api/v1/backtests"]["post"]
    assert "202" in post["responses"]
