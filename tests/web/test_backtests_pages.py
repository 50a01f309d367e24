"""/backtests: the form's estimate step and run step, progress while queued, results with charts and the report's
sections once a worker ran it, the past runs, delete; on both databases, with CSRF on; another user's backtest is a
404 everywhere."""

import html
import json
import re

import pytest

from app import current_settings
from app.extensions import db
from app.models import Backtest, BacktestStatus
from app.services.backtests import BacktestRequest, create_backtest, run_recorded_backtest
from tests import factories
from tests.web.helpers import csrf_token, post_form

BTC_1H = "binance_BTCUSDT_1h_2024-01_2024-09.csv"
SMALL = {
    "symbol": "BTC/USDT",
    "timeframe": "1h",
    "start": "2024-08-20",
    "end": "",
    "signal_source": "rules:sma_cross",
    "params": "fast=10",
    "balance": "100",
    "fee_rate": "0.001",
    "every": "1",
    "max_cost": "",
}


@pytest.fixture
def btc(app):
    factories.candles(db.session, BTC_1H)
    db.session.commit()


def queued_for(user, **fields) -> Backtest:
    values = {"user_id": user.id, "symbol": "BTC/USDT", "timeframe": "1h", "signals": "rules:sma_cross"}
    record = create_backtest(db.session, current_settings(), BacktestRequest(**{**values, **fields}))
    db.session.commit()
    return record


def finished_for(user, **fields) -> Backtest:
    record = queued_for(user, start="2024-08-20", params={"fast": "10"}, **fields)
    run_recorded_backtest(db.session, current_settings(), record.id)
    return record


def field_error(page: str, field_id: str) -> str:
    match = re.search(rf'id="{field_id}-error">(.*?)</p>', page, re.S)
    return html.unescape(match.group(1)) if match else ""


def test_pages_need_a_signed_in_user(client, ada):
    response = client.get("/backtests")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_index_shows_the_form_and_what_to_do_with_no_runs(signed_in, btc):
    page = signed_in.get("/backtests").get_data(as_text=True)
    assert '<label for="signal_source">Signal source and model</label>' in page
    assert '<option selected value="rules:sma_cross">Rules: sma cross</option>' in page
    assert "No backtests yet. Fill in the form above" in page
    assert "Estimate cost" in page and "Run backtest" not in page


def test_estimate_of_a_rules_run_is_free_and_offers_run_with_the_typed_values(signed_in, btc):
    response = post_form(signed_in, "/backtests/estimate", SMALL, form_path="/backtests")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    estimate = page[page.index('data-testid="estimated-cost"') :]
    assert "None: a rules strategy runs offline, for free." in estimate[: estimate.index("</dd>")]
    assert re.search(r"Decisions</dt><dd>[\d,]+ bars, from 2024-08-20 00:00 to 2024-09-06 03:00 UTC", page)
    assert 'data-testid="run"' in page and 'formaction="/backtests"' in page
    assert 'value="fast=10"' in page and 'value="2024-08-20"' in page
    assert db.session.query(Backtest).count() == 0  # an estimate records nothing


def test_estimate_of_a_paid_model_shows_its_cost_and_caps_the_run_at_it(signed_in, btc):
    response = post_form(
        signed_in, "/backtests/estimate", {**SMALL, "signal_source": "deepseek", "params": ""}, form_path="/backtests"
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 200, page
    cost = re.search(r"<strong>about \$(0\.\d{4})</strong> at most, for up to ([\d,]+) provider calls", page)
    assert cost and float(cost.group(1)) > 0
    hidden = re.search(r'id="estimate" name="estimate" type="hidden" value="([^"]+)"', page)
    assert hidden and float(hidden.group(1)) > 0
    assert "Run spends at most this estimate" in page


def test_a_paid_run_above_the_estimate_it_was_shown_is_refused_on_that_field(signed_in, btc):
    data = {**SMALL, "signal_source": "deepseek", "params": "", "estimate": "0.000001"}
    response = post_form(signed_in, "/backtests", data, form_path="/backtests")
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert re.match(r"estimated AI cost \$0\.\d{4} for [\d,]+ decisions is above max_cost", "x") is None
    message = field_error(page, "max_cost")
    assert "is above the most AI cost allowed $0.0000" in message, message
    assert db.session.query(Backtest).count() == 0


def test_a_paid_run_without_a_provider_key_is_refused_on_the_source(signed_in, btc):
    data = {**SMALL, "signal_source": "deepseek", "params": "", "max_cost": "5"}
    page = post_form(signed_in, "/backtests", data, form_path="/backtests").get_data(as_text=True)
    assert "deepseek has no API key" in field_error(page, "signal_source")
    assert re.search(r'id="max_cost"[^>]*value="5"', page)


@pytest.mark.parametrize(
    ("fields", "field_id", "message"),
    [
        ({"symbol": "ETH/USDT"}, "symbol", "no ETH/USDT 1h candles stored for binance"),
        ({"start": "2024-02-30"}, "start", 'Window start must be a date, YYYY-MM-DD, got "2024-02-30".'),
        ({"start": "2024-09-01", "end": "2024-08-01"}, "end", "end 2024-08-01 is before start 2024-09-01"),
        ({"params": "fast"}, "params", 'Strategy parameters must be written NAME=VALUE, got "fast".'),
        ({"fee_rate": "5"}, "fee_rate", 'The fee rate must be a fraction in [0, 0.1), e.g. 0.001 for 0.1%, got "5"'),
        ({"balance": "abc"}, "balance", 'The starting balance must be a number, got "abc"'),
        ({"every": "x"}, "every", 'Decide every (bars) must be a whole number, got "x".'),
    ],
)
def test_bad_input_is_shown_on_its_field_with_what_was_typed(signed_in, btc, fields, field_id, message):
    for path in ("/backtests/estimate", "/backtests"):
        response = post_form(signed_in, path, {**SMALL, **fields}, form_path="/backtests")
        page = response.get_data(as_text=True)
        assert response.status_code == 400
        assert message in field_error(page, field_id), field_error(page, field_id)
        typed = next(iter(fields.values())) if field_id != "end" else fields["end"]
        assert re.search(rf'id="{field_id}"[^>]*value="{re.escape(html.escape(typed))}"', page)
    assert db.session.query(Backtest).count() == 0


def test_forms_refuse_a_post_without_csrf_token(signed_in, btc, ada):
    assert signed_in.post("/backtests/estimate", data=SMALL).status_code == 400
    assert signed_in.post("/backtests", data=SMALL).status_code == 400
    record = queued_for(ada)
    assert signed_in.post(f"/backtests/{record.id}/delete").status_code == 400
    assert db.session.get(Backtest, record.id) is not None


def test_run_queues_it_and_its_page_polls_progress_until_a_worker_finishes_it(signed_in, btc):
    response = post_form(signed_in, "/backtests", SMALL, form_path="/backtests")
    assert response.status_code == 302
    record = db.session.query(Backtest).one()
    assert response.headers["Location"] == f"/backtests/{record.id}"
    assert record.status is BacktestStatus.QUEUED and record.signal_params == {"fast": "10"}
    page = signed_in.get(f"/backtests/{record.id}").get_data(as_text=True)
    assert "queued." in page and "waiting for a worker to start it." in page
    assert f'hx-get="/backtests/{record.id}/progress" hx-trigger="every 2s" hx-swap="outerHTML"' in page
    fragment = signed_in.get(f"/backtests/{record.id}/progress")
    assert "HX-Refresh" not in fragment.headers and "<html" not in fragment.get_data(as_text=True)

    run_recorded_backtest(db.session, current_settings(), record.id)
    fragment = signed_in.get(f"/backtests/{record.id}/progress")
    assert fragment.headers["HX-Refresh"] == "true"
    assert "hx-trigger" not in fragment.get_data(as_text=True)  # polling stops with the swap


def test_results_show_metrics_against_baselines_charts_trades_and_the_report(signed_in, btc, ada):
    record = finished_for(ada)
    db.session.refresh(record)
    page = signed_in.get(f"/backtests/{record.id}").get_data(as_text=True)
    assert '<span class="badge good">Succeeded</span>' in page
    assert "<h2>Metrics</h2>" in page and "<th>Strategy</th><th>Buy and hold</th><th>rules:sma_cross</th>" in page
    assert "<td>Return after AI cost</td>" in page
    chart_data = json.loads(signed_in.get(f"/backtests/{record.id}/chart.json").data)
    trades = len(chart_data["panes"][2]["series"][0]["markers"])
    assert f"<h2>Trades ({trades // 2:,})</h2>" in page and "USDT</td>" in page
    assert f'data-chart-url="/backtests/{record.id}/chart.json"' in page
    total = record.metrics["total_return_pct"]
    assert f"the strategy returned {total:,.2f}%" in page
    assert "<header>" not in page  # the page shows its own title; the report's sections follow it
    assert "vendor/lightweight-charts/lightweight-charts.standalone.production.js" in page

    chart = signed_in.get(f"/backtests/{record.id}/chart.json")
    assert chart.status_code == 200 and chart.mimetype == "application/json"
    panes = chart.get_json()["panes"]
    assert [pane["title"] for pane in panes] == ["Equity (USDT)", "Drawdown (%)", "Price and trades (USDT)"]
    names = [series["name"] for series in panes[0]["series"]]
    assert names == ["Strategy (USDT)", "Buy and hold (USDT)", "rules:sma_cross (USDT)"]
    price = panes[2]["series"][0]
    assert price["type"] == "candles" and set(price["data"][0]) == {"time", "open", "high", "low", "close"}
    assert price["data"][0]["time"] == 1724112000  # 2024-08-20 00:00 UTC, the first decision bar
    assert trades and trades % 2 == 0
    assert all(point["value"] <= 0 for point in panes[1]["series"][0]["data"])

    report = signed_in.get(f"/backtests/{record.id}/report")
    assert report.status_code == 200 and report.mimetype == "text/html"
    assert "<svg" in report.get_data(as_text=True)


def test_the_report_file_is_served_with_its_own_policy_for_inline_css(app, signed_in, btc, ada):
    record = finished_for(ada)
    endpoint, _ = app.url_map.bind("localhost").match(f"/backtests/{record.id}/report")
    assert endpoint == "backtests.report"
    report = signed_in.get(f"/backtests/{record.id}/report")
    policy = report.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "style-src 'unsafe-inline'" in policy and "script-src" not in policy


def test_past_runs_list_window_source_parameters_status_and_date(signed_in, btc, ada):
    record = finished_for(ada)
    page = signed_in.get("/backtests").get_data(as_text=True)
    row = page[page.index(f'data-testid="backtest-{record.id}"') :]
    row = row[: row.index("</tr>")]
    assert f"#{record.id} BTC/USDT 1h" in row
    assert "2024-08-20 00:00 → 2024-09-06 03:00 UTC" in row
    assert "rules:sma_cross" in row and "Fast 10" in row
    assert "Succeeded" in row and re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC", row)


def test_a_failed_run_shows_its_reason(signed_in, btc, ada):
    record = queued_for(ada, start="2024-08-20")
    record.status, record.error_message = BacktestStatus.FAILED, "running: something broke"
    db.session.commit()
    page = signed_in.get(f"/backtests/{record.id}").get_data(as_text=True)
    assert 'data-testid="failure">running: something broke</p>' in page
    assert "hx-trigger" not in page


def test_delete_removes_the_run_and_its_files(signed_in, btc, ada):
    record = finished_for(ada)
    response = post_form(signed_in, f"/backtests/{record.id}/delete", {}, form_path=f"/backtests/{record.id}")
    assert response.status_code == 302 and response.headers["Location"] == "/backtests"
    assert f"Backtest #{record.id} deleted." in signed_in.get("/backtests").get_data(as_text=True)
    assert signed_in.get(f"/backtests/{record.id}").status_code == 404
    assert signed_in.get(f"/backtests/{record.id}/chart.json").status_code == 404


def test_a_running_backtest_cannot_be_deleted(signed_in, btc, ada):
    record = queued_for(ada)
    token = csrf_token(signed_in, f"/backtests/{record.id}")
    record.status = BacktestStatus.RUNNING
    db.session.commit()
    response = signed_in.post(f"/backtests/{record.id}/delete", data={"csrf_token": token})
    assert response.status_code == 302
    page = signed_in.get(response.headers["Location"]).get_data(as_text=True)
    assert f"Backtest #{record.id} is running: wait for it to finish." in page


def test_another_users_backtest_is_a_404_everywhere(signed_in, btc, stranger):
    record = finished_for(stranger)
    for path in ("", "/progress", "/chart.json", "/report"):
        assert signed_in.get(f"/backtests/{record.id}{path}").status_code == 404
    token = csrf_token(signed_in, "/backtests")
    assert signed_in.post(f"/backtests/{record.id}/delete", data={"csrf_token": token}).status_code == 404
    assert db.session.get(Backtest, record.id) is not None
    assert f"backtest-{record.id}" not in signed_in.get("/backtests").get_data(as_text=True)
