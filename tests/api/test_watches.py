"""/api/v1/watches: create, list, read, change, delete, pause, resume, run now and the runs of a watch."""

from datetime import UTC, datetime, timedelta

import pytest

from app.extensions import db
from app.models import AuditEvent, RunStatus, Watch, WatchRun
from tests import factories
from tests.api.conftest import ApiClient, issue

BTC_1H = "binance_BTCUSDT_1h_2024-01_2024-09.csv"
ETH_1H = "binance_ETHUSDT_1h_2024-01_2024-09.csv"


@pytest.fixture
def btc_candles(api_app):
    factories.candles(db.session, BTC_1H)
    db.session.commit()


def _new(**fields):
    return {"symbol": "BTC/USDT", "timeframe": "1h", "signal_source": "rules:rsi_reversion", **fields}


def _create(client, **fields):
    response = client.post("/api/v1/watches", json=_new(**fields))
    assert response.status_code == 201, response.json
    return response.json


def _runs(watch_id: int, count: int, start: datetime = datetime(2024, 9, 1, tzinfo=UTC)) -> list[int]:
    """`count` finished runs of a watch on consecutive hours, recorded as the scheduler would leave them."""
    rows = [
        WatchRun(
            watch_id=watch_id,
            bar_time=start + timedelta(hours=i),
            trigger="schedule",
            status=RunStatus.FAILED if i % 2 else RunStatus.SUCCEEDED,
            failed_step="signal" if i % 2 else None,
            error_code="NO_CANDLES" if i % 2 else None,
            error_message="no candles" if i % 2 else None,
            steps=[{"step": "candles", "ms": 1.5, "outcome": "ok"}],
        )
        for i in range(count)
    ]
    db.session.add_all(rows)
    db.session.commit()
    return [row.id for row in rows]


# --- POST /watches ---------------------------------------------------------------------------------------------------


def test_create_returns_the_watch_with_warnings_and_its_location(caller, btc_candles):
    response = caller.post(
        "/api/v1/watches",
        json=_new(
            symbol="btc/usdt",
            params={"low": "25"},
            account_id=caller.account.id,
            max_cost_per_call_usd="0.002",
            daily_budget_usd=0.5,
        ),
    )
    assert response.status_code == 201, response.json
    body = response.json
    assert response.headers["Location"].endswith(f"/api/v1/watches/{body['id']}")
    assert body["symbol"] == "BTC/USDT"  # as the service stores it
    assert body["timeframe"] == "1h" and body["schedule"] == "on every 1h close"
    assert body["signal_source"] == "rules:rsi_reversion" and body["exchange"] == "binance"
    assert body["params"] == {"low": 25}
    assert body["account_id"] == caller.account.id
    assert body["max_cost_per_call_usd"] == "0.002" and body["daily_budget_usd"] == "0.5"
    assert body["auto_execute"] is False and body["enabled"] is True
    assert body["last_run"] is None and body["last_bar_at"] is None
    assert body["warnings"] == []

    watch = db.session.get(Watch, body["id"])
    assert watch is not None and watch.user_id == caller.user.id  # committed by the request
    assert db.session.query(AuditEvent).filter_by(event="watch.created").count() == 1
    assert caller.get(response.headers["Location"]).json["id"] == body["id"]


def test_create_without_a_key_is_401_and_with_a_read_key_403(api_app, caller, btc_candles):
    assert ApiClient(api_app, None).post("/api/v1/watches", json=_new()).status_code == 401
    reader = ApiClient(api_app, issue(caller.user, ["read"]))
    response = reader.post("/api/v1/watches", json=_new())
    assert response.status_code == 403
    assert response.json["error"]["details"]["required_scope"] == "analyze"
    assert db.session.query(Watch).count() == 0


def test_auto_execute_needs_the_trade_scope(api_app, caller, btc_candles):
    analyst = ApiClient(api_app, issue(caller.user, ["analyze"]))
    response = analyst.post("/api/v1/watches", json=_new(account_id=caller.account.id, auto_execute=True))
    assert response.status_code == 403
    error = response.json["error"]
    assert error["code"] == "MISSING_SCOPE" and error["details"]["required_scope"] == "trade"
    assert db.session.query(Watch).count() == 0

    trader = ApiClient(api_app, issue(caller.user, ["analyze", "trade"]))
    response = trader.post("/api/v1/watches", json=_new(account_id=caller.account.id, auto_execute=True))
    assert response.status_code == 201 and response.json["auto_execute"] is True


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"signal_source": None}, "signal_source"),
        ({"signal_source": "telepathy"}, "signal_source"),  # refused by the service, named as the API names it
        ({"timeframe": "7m"}, "timeframe"),
        ({"symbol": "x" * 33}, "symbol"),
        ({"max_cost_per_call_usd": "-1"}, "max_cost_per_call_usd"),
        ({"daily_budget_usd": "lots"}, "daily_budget_usd"),
        ({"params": {"low": "very"}}, "params"),
        ({"auto_execute": True}, "auto_execute"),  # without an account
        ({"max_cost": "1"}, "max_cost"),  # a typo is refused, never ignored
    ],
)
def test_create_refuses_bad_input_naming_the_field(caller, btc_candles, fields, field):
    response = caller.post("/api/v1/watches", json=_new(**fields))
    assert response.status_code == 422, response.json
    assert response.json["error"]["code"] == "INVALID_INPUT"
    assert field in response.json["error"]["details"]["field"]


def test_create_refuses_a_market_without_stored_candles(caller, btc_candles):
    response = caller.post("/api/v1/watches", json=_new(symbol="ETH/USDT"))
    assert response.status_code == 422
    assert response.json["error"]["details"]["field"] == "timeframe"
    assert "no ETH/USDT 1h candles" in response.json["error"]["message"]


def test_create_with_someone_elses_account_is_404(caller, stranger, btc_candles):
    response = caller.post("/api/v1/watches", json=_new(account_id=stranger.account.id))
    assert response.status_code == 404 and response.json["error"]["details"]["field"] == "account_id"


def test_a_duplicate_watch_is_409_naming_the_existing_one(caller, btc_candles):
    first = _create(caller)
    response = caller.post("/api/v1/watches", json=_new(symbol="btc/usdt"))
    assert response.status_code == 409
    assert response.json["error"]["code"] == "CONFLICT"
    assert response.json["error"]["details"]["watch_id"] == first["id"]
    assert db.session.query(Watch).count() == 1
    # Another signal source on the same market is a different watch.
    assert caller.post("/api/v1/watches", json=_new(signal_source="rules:sma_cross")).status_code == 201


# --- GET /watches ----------------------------------------------------------------------------------------------------


def test_list_pages_newest_first_with_the_last_run_and_never_a_strangers(caller, stranger, btc_candles):
    factories.candles(db.session, ETH_1H)
    db.session.commit()
    ids = [_create(caller, signal_source=source)["id"] for source in ("rules:rsi_reversion", "rules:sma_cross")] + [
        _create(caller, symbol="ETH/USDT")["id"]
    ]
    theirs = _create(stranger)["id"]
    _runs(ids[0], 2)

    first = caller.get("/api/v1/watches?limit=2")
    assert first.status_code == 200
    assert [w["id"] for w in first.json["items"]] == [ids[2], ids[1]]
    assert first.json["next_cursor"]
    second = caller.get(f"/api/v1/watches?limit=2&cursor={first.json['next_cursor']}")
    assert [w["id"] for w in second.json["items"]] == [ids[0]]
    assert second.json["next_cursor"] is None
    last_run = second.json["items"][0]["last_run"]
    assert last_run["bar_time"] == "2024-09-01T01:00:00+00:00" and last_run["status"] == "failed"
    assert last_run["failed_step"] == "signal" and last_run["error_code"] == "NO_CANDLES"

    everything = caller.get("/api/v1/watches").json["items"]
    assert theirs not in [w["id"] for w in everything] and len(everything) == 3


def test_list_needs_a_key_with_read(api_app, caller):
    assert ApiClient(api_app, None).get("/api/v1/watches").status_code == 401
    analyst = ApiClient(api_app, issue(caller.user, ["analyze"]))
    response = analyst.get("/api/v1/watches")
    assert response.status_code == 403 and response.json["error"]["details"]["required_scope"] == "read"


@pytest.mark.parametrize(("query", "field"), [("limit=0", "limit"), ("limit=201", "limit"), ("cursor=nope", "cursor")])
def test_list_refuses_a_bad_page_query(caller, query, field):
    response = caller.get(f"/api/v1/watches?{query}")
    assert response.status_code == 422 and response.json["error"]["details"]["field"] == field


# --- GET /watches/{id} -----------------------------------------------------------------------------------------------


def test_get_returns_the_watch(api_app, caller, btc_candles):
    created = _create(caller, params={"high": "75"})
    response = caller.get(f"/api/v1/watches/{created['id']}")
    assert response.status_code == 200
    assert response.json == {key: value for key, value in created.items() if key != "warnings"}
    assert ApiClient(api_app, None).get(f"/api/v1/watches/{created['id']}").status_code == 401
    analyst = ApiClient(api_app, issue(caller.user, ["analyze"]))
    assert analyst.get(f"/api/v1/watches/{created['id']}").status_code == 403


@pytest.mark.parametrize("watch_id", ["0", "2147483648", "99999999999999999999"])
def test_a_watch_id_out_of_range_is_422(caller, watch_id):
    response = caller.get(f"/api/v1/watches/{watch_id}")
    assert response.status_code == 422 and response.json["error"]["details"]["field"] == "watch_id"


# --- PATCH /watches/{id} ---------------------------------------------------------------------------------------------


def test_patch_changes_what_is_sent_and_keeps_the_rest(caller, btc_candles):
    created = _create(caller, params={"low": "25"}, account_id=caller.account.id, daily_budget_usd="1")
    response = caller.patch(
        f"/api/v1/watches/{created['id']}",
        json={"params": {"high": "80"}, "max_cost_per_call_usd": "0.01", "daily_budget_usd": None},
    )
    assert response.status_code == 200, response.json
    body = response.json
    assert body["params"] == {"high": 80}
    assert body["max_cost_per_call_usd"] == "0.01" and body["daily_budget_usd"] is None
    assert body["account_id"] == caller.account.id and body["signal_source"] == "rules:rsi_reversion"
    assert caller.get(f"/api/v1/watches/{created['id']}").json == body
    assert db.session.query(AuditEvent).filter_by(event="watch.changed").count() == 1

    response = caller.patch(f"/api/v1/watches/{created['id']}", json={"account_id": None})
    assert response.status_code == 200 and response.json["account_id"] is None


def test_patch_turning_auto_execute_on_needs_the_trade_scope(api_app, caller, btc_candles):
    created = _create(caller, account_id=caller.account.id)
    analyst = ApiClient(api_app, issue(caller.user, ["analyze"]))
    path = f"/api/v1/watches/{created['id']}"
    response = analyst.patch(path, json={"auto_execute": True})
    assert response.status_code == 403 and response.json["error"]["details"]["required_scope"] == "trade"
    assert db.session.get(Watch, created["id"]).auto_execute is False
    # Turning it off, or changing a budget, is analysis work.
    assert analyst.patch(path, json={"auto_execute": False, "daily_budget_usd": "2"}).status_code == 200
    response = caller.patch(path, json={"auto_execute": True})
    assert response.status_code == 200 and response.json["auto_execute"] is True
    assert analyst.patch(path, json={"daily_budget_usd": "3"}).status_code == 200
    other = factories.paper_account(db.session, caller.user)
    db.session.commit()
    # Moving an auto-executing watch's orders to another account is trading work too.
    assert analyst.patch(path, json={"account_id": other.id}).status_code == 403


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"signal_source": None}, "signal_source"),
        ({"auto_execute": None}, "auto_execute"),
        ({"signal_source": "rules:nonsense"}, "signal_source"),
        ({"daily_budget_usd": "-2"}, "daily_budget_usd"),
        ({"symbol": "ETH/USDT"}, "symbol"),  # a watch's market is fixed: not a field of a change
    ],
)
def test_patch_refuses_bad_input_naming_the_field(caller, btc_candles, body, field):
    created = _create(caller)
    response = caller.patch(f"/api/v1/watches/{created['id']}", json=body)
    assert response.status_code == 422, response.json
    assert field in response.json["error"]["details"]["field"]
    assert caller.get(f"/api/v1/watches/{created['id']}").json["signal_source"] == "rules:rsi_reversion"


def test_patch_to_a_source_another_watch_has_is_409(caller, btc_candles):
    _create(caller)
    other = _create(caller, signal_source="rules:sma_cross")
    response = caller.patch(f"/api/v1/watches/{other['id']}", json={"signal_source": "rules:rsi_reversion"})
    assert response.status_code == 409


def test_patch_needs_a_key_with_analyze(api_app, caller, btc_candles):
    created = _create(caller)
    path = f"/api/v1/watches/{created['id']}"
    assert ApiClient(api_app, None).patch(path, json={"daily_budget_usd": "1"}).status_code == 401
    reader = ApiClient(api_app, issue(caller.user, ["read"]))
    assert reader.patch(path, json={"daily_budget_usd": "1"}).status_code == 403


# --- DELETE, pause, resume -------------------------------------------------------------------------------------------


def test_delete_is_204_and_takes_the_runs_with_it(api_app, caller, btc_candles):
    created = _create(caller)
    _runs(created["id"], 2)
    path = f"/api/v1/watches/{created['id']}"
    assert ApiClient(api_app, None).delete(path).status_code == 401
    assert ApiClient(api_app, issue(caller.user, ["read"])).delete(path).status_code == 403
    response = caller.delete(path)
    assert response.status_code == 204 and response.data == b""
    assert caller.get(path).status_code == 404
    assert db.session.query(WatchRun).count() == 0
    assert caller.delete(path).status_code == 404


def test_pause_and_resume(api_app, caller, btc_candles):
    created = _create(caller)
    path = f"/api/v1/watches/{created['id']}"
    paused = caller.post(f"{path}/pause")
    assert paused.status_code == 200 and paused.json["enabled"] is False
    assert caller.post(f"{path}/pause").json["enabled"] is False  # again: nothing changes
    assert db.session.query(AuditEvent).filter_by(event="watch.paused").count() == 1
    assert caller.get(path).json["enabled"] is False
    resumed = caller.post(f"{path}/resume")
    assert resumed.status_code == 200 and resumed.json["enabled"] is True
    assert db.session.get(Watch, created["id"]).enabled is True
    reader = ApiClient(api_app, issue(caller.user, ["read"]))
    for action in ("pause", "resume"):
        assert ApiClient(api_app, None).post(f"{path}/{action}").status_code == 401
        assert reader.post(f"{path}/{action}").status_code == 403


# --- run now and runs ------------------------------------------------------------------------------------------------


def test_run_now_analyses_the_latest_stored_bar_once(caller, btc_candles):
    created = _create(caller, account_id=caller.account.id)
    path = f"/api/v1/watches/{created['id']}"
    response = caller.post(f"{path}/run")
    assert response.status_code == 200, response.json
    run = response.json
    assert run["watch_id"] == created["id"] and run["trigger"] == "manual"
    # The store's newest 1h bar of the bundled file opened 2024-09-06 03:00: "now" on the store is its close.
    assert run["bar_time"] == "2024-09-06T03:00:00+00:00"
    assert run["status"] == "succeeded", run
    assert run["finished_at"] is not None and run["started_at"] is not None
    assert run["failed_step"] is None and run["error_code"] is None
    assert run["analysis_id"] is not None
    assert run["signal"]["analysis_status"] == "ok" and run["signal"]["action"] in ("BUY", "SELL", "HOLD")
    assert run["signal"]["cost_usd"] == "0"
    assert [step["step"] for step in run["steps"]] == ["candles", "context", "signal", "signal_status", "trade"]
    assert run["summary"].startswith(
        f"run #{run['id']} watch #{created['id']} BTC/USDT 1h rules:rsi_reversion bar 2024-09-06 03:00 UTC: "
        f"{run['signal']['action']}"
    )
    # RSI(14) sits between 30 and 70 on that bar: the rules answer HOLD, which the account's risk manager records.
    assert run["signal"]["action"] == "HOLD" and run["signal"]["confidence"] == 0
    decision = run["decision"]
    assert decision["account_id"] == caller.account.id and decision["approved"] is False
    assert [reason["code"] for reason in decision["reasons"]] == ["HOLD_SIGNAL"]
    assert run["order_id"] is None
    assert run["summary"].endswith("HOLD (confidence 0)")
    analysis = caller.get(f"/api/v1/analyses/{run['analysis_id']}")
    assert analysis.status_code == 200

    # The same bar is never analysed twice: a second "run now" answers the same run.
    again = caller.post(f"{path}/run")
    assert again.status_code == 200 and again.json["id"] == run["id"]
    assert db.session.query(WatchRun).count() == 1
    watch = caller.get(path).json
    assert watch["last_run"]["status"] == run["status"] and watch["last_run"]["bar_time"] == run["bar_time"]
    listed = caller.get(f"{path}/runs").json["items"]
    assert [r["id"] for r in listed] == [run["id"]]
    assert {k: v for k, v in run.items() if k != "summary"} == listed[0]


def test_run_now_of_an_auto_executing_watch_needs_the_trade_scope(api_app, caller, btc_candles):
    created = _create(caller, account_id=caller.account.id, auto_execute=True)
    path = f"/api/v1/watches/{created['id']}/run"
    analyst = ApiClient(api_app, issue(caller.user, ["analyze"]))
    response = analyst.post(path)
    assert response.status_code == 403 and response.json["error"]["details"]["required_scope"] == "trade"
    assert db.session.query(WatchRun).count() == 0
    assert ApiClient(api_app, None).post(path).status_code == 401
    assert ApiClient(api_app, issue(caller.user, ["read"])).post(path).status_code == 403


def test_runs_page_newest_first(api_app, caller, stranger, btc_candles):
    created = _create(caller)
    ids = _runs(created["id"], 3)
    _runs(_create(stranger)["id"], 2)
    path = f"/api/v1/watches/{created['id']}/runs"
    first = caller.get(f"{path}?limit=2")
    assert first.status_code == 200
    assert [r["id"] for r in first.json["items"]] == [ids[2], ids[1]]
    newest = first.json["items"][0]
    assert newest["bar_time"] == "2024-09-01T02:00:00+00:00" and newest["status"] == "succeeded"
    assert newest["steps"] == [{"step": "candles", "ms": 1.5, "outcome": "ok"}]
    assert newest["analysis_id"] is None and newest["signal"] is None and newest["decision"] is None
    assert first.json["items"][1]["error_code"] == "NO_CANDLES"
    second = caller.get(f"{path}?limit=2&cursor={first.json['next_cursor']}")
    assert [r["id"] for r in second.json["items"]] == [ids[0]] and second.json["next_cursor"] is None

    assert caller.get(f"{path}?limit=0").json["error"]["details"]["field"] == "limit"
    assert caller.get(f"{path}?cursor=zzz").status_code == 422
    assert ApiClient(api_app, None).get(path).status_code == 401
    assert ApiClient(api_app, issue(caller.user, ["analyze"])).get(path).status_code == 403


# --- someone else's watch --------------------------------------------------------------------------------------------


def test_a_strangers_watch_is_404_on_every_route(caller, stranger, btc_candles):
    theirs = _create(stranger, account_id=stranger.account.id)
    _runs(theirs["id"], 1)
    path = f"/api/v1/watches/{theirs['id']}"
    missing = "/api/v1/watches/2147483647"
    for target in (path, missing):
        responses = [
            caller.get(target),
            caller.patch(target, json={"daily_budget_usd": "1"}),
            caller.delete(target),
            caller.post(f"{target}/pause"),
            caller.post(f"{target}/resume"),
            caller.post(f"{target}/run"),
            caller.get(f"{target}/runs"),
        ]
        for response in responses:
            assert response.status_code == 404, (response.request.method, response.request.path, response.json)
            assert response.json["error"]["code"] == "NOT_FOUND"
            assert response.json["error"]["details"]["field"] == "watch_id"
    # Nothing of theirs moved.
    watch = db.session.get(Watch, theirs["id"])
    assert watch is not None and watch.enabled and watch.daily_budget_usd is None
    assert db.session.query(WatchRun).count() == 1
    assert stranger.get(path).status_code == 200
