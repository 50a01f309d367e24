"""The dashboard through the test client on both databases: after a filled BUY the equity counts the BTC held
(not 63 of 100 USDT), a filled and a refused BUY read differently, a stopped account says why and offers the way
out, the live part and the equity chart's data answer for the user's own account only."""

import re
from decimal import Decimal

import pytest
from flask import g

from app.extensions import db
from app.models import Decision
from risk import TradingState
from tests import factories
from tests.services.test_overview import BUY_BAR, run
from tests.web.helpers import PASSWORD, csrf_token, page_text, sign_in


@pytest.fixture
def bought(ada):
    """Ada's paper account after rules:rsi_reversion bought 0.00084 BTC at 43,624.00 USDT."""
    account = ada.accounts[0]
    watch = factories.watch(db.session, ada, account, signal_source="rules:rsi_reversion", auto_execute=True)
    factories.candles(db.session, "binance_BTCUSDT_1h_2024-01_2024-09.csv")
    db.session.commit()
    run(watch, BUY_BAR)
    return account


def test_signed_out_visitors_are_sent_to_sign_in(client):
    response = client.get("/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login?next=")


def test_after_a_filled_buy_the_equity_counts_the_btc_and_the_signal_says_filled(signed_in, bought):
    response = signed_in.get("/")
    assert response.status_code == 200
    text = page_text(response)
    equity = re.search(r'data-testid="equity">([\d,.]+) USDT<', response.get_data(as_text=True)).group(1)
    assert Decimal("99") < Decimal(equity) < Decimal("101")  # cash 63.32 plus the BTC at the replay's price
    assert "Cash 63.32 USDT" in text  # 100 - 0.00084 x 43,624 - 0.0366 fee
    assert "0.00084 BTC" in text and "43,624.00 USDT" in text and "42,434.55 USDT" in text
    assert "approved, buy filled 0.00084 BTC at 43,624.00" in text
    assert "Trading" in text and "Stop trading" in text
    assert "Replay: prices and bar times come from replayed 2024 candles" in text


def test_a_refused_buy_reads_refused_with_its_codes(signed_in, ada):
    account = ada.accounts[0]
    refused = factories.analysis(db.session, ada, account, signal={"action": "BUY", "confidence": 62})
    db.session.add(
        Decision(analysis_id=refused.id, account_id=account.id, approved=False, reasons=[{"code": "MIN_NOTIONAL"}])
    )
    db.session.commit()
    text = page_text(signed_in.get("/"))
    assert "BUY confidence 62 refused: MIN_NOTIONAL" in text


def test_a_stopped_account_says_why_and_offers_resume(signed_in, ada):
    account = ada.accounts[0]
    token = csrf_token(signed_in, "/")
    response = signed_in.post(f"/settings/accounts/{account.id}/halt", data={"csrf_token": token})
    assert response.status_code == 302
    db.session.refresh(account)
    assert account.trading_state is TradingState.HALTED
    page = signed_in.get("/").get_data(as_text=True)
    reason = re.search(r'data-testid="state-reason">([^<]+)<', page).group(1)
    assert "kill switch" in reason
    assert "Resume trading" in page and "Stop trading" not in page

    response = signed_in.post(
        f"/settings/accounts/{account.id}/resume", data={"csrf_token": csrf_token(signed_in, "/")}
    )
    assert response.status_code == 302
    assert "Stop trading" in signed_in.get("/").get_data(as_text=True)


def test_the_live_part_and_the_equity_data_are_the_users_own(signed_in, bought, stranger):
    live = signed_in.get("/dashboard/live")
    assert live.status_code == 200
    body = live.get_data(as_text=True)
    assert body.lstrip().startswith('<div id="live"') and "<html" not in body

    chart = signed_in.get(f"/accounts/{bought.id}/equity.json")
    assert chart.status_code == 200
    [pane] = chart.get_json()["panes"]
    equity, start = pane["series"]
    assert equity["name"] == "Equity (USDT)" and len(equity["data"]) > 2
    assert equity["data"][0]["value"] == 100.0 and {p["value"] for p in start["data"]} == {100.0}
    assert signed_in.get(f"/accounts/{stranger.accounts[0].id}/equity.json").status_code == 404


def test_pages_carry_security_headers_and_no_inline_script(signed_in, bought):
    response = signed_in.get("/")
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self';" in policy and "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy and response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    page = response.get_data(as_text=True)
    assert all("src=" in tag for tag in re.findall(r"<script[^>]*>", page))
    assert ' style="' not in page and " onclick=" not in page
    assert 'rel="icon"' in page and signed_in.get("/static/favicon.svg").status_code == 200


def test_sign_up_opens_a_paper_account_of_the_chosen_size(client):
    data = {
        "display_name": "Bo",
        "email": "bo@example.com",
        "password": PASSWORD,
        "confirm": PASSWORD,
        "starting_balance": "250",
    }
    response = client.post("/signup", data={**data, "csrf_token": csrf_token(client, "/signup")})
    assert response.status_code == 302 and response.headers["Location"] == "/"
    text = page_text(client.get("/"))
    assert "Welcome, Bo" in text and "250.00 USDT" in text and "Paper account" in text


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("starting_balance", "5", "Paper account balance (USDT) must be between 10 and 1,000,000 USDT, got 5"),
        ("starting_balance", "abc", 'Paper account balance (USDT) must be a number of USDT, got "abc"'),
        ("email", "ada@example.com", 'Email "ada@example.com" is already registered: sign in instead'),
        ("email", "not-an-address", 'Email must be an address like name@example.com, got "not-an-address"'),
        ("display_name", " ", "Enter your name."),
    ],
)
def test_sign_up_shows_the_fields_error_and_keeps_what_was_typed(client, ada, field, value, message):
    data = {"display_name": "Bo", "email": "bo@example.com", "password": PASSWORD, "confirm": PASSWORD}
    data |= {"starting_balance": "100", field: value}
    response = client.post("/signup", data={**data, "csrf_token": csrf_token(client, "/signup")})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    error = re.search(rf'id="{field}-error">([^<]+)<', page).group(1)
    assert error.replace("&#34;", '"') == message
    assert f'value="{value}"' in page and 'aria-invalid="true"' in page
    assert 'value="bo@example.com"' in page or field == "email"  # the other fields keep what was typed too


def test_a_form_without_its_csrf_token_is_refused_with_a_page_that_says_so(client):
    response = client.post("/signup", data={"display_name": "Bo", "email": "bo@example.com"})
    assert response.status_code == 400
    assert "The form expired or came from another site" in response.get_data(as_text=True)


def test_changing_the_password_needs_the_current_one(signed_in):
    new = "a brand new passphrase"
    data = {"current_password": "wrong one!", "new_password": new, "confirm": new}
    response = signed_in.post("/password", data={**data, "csrf_token": csrf_token(signed_in, "/password")})
    assert response.status_code == 400
    assert "Current password is not the password you sign in with" in response.get_data(as_text=True)

    data["current_password"] = PASSWORD
    response = signed_in.post("/password", data={**data, "csrf_token": csrf_token(signed_in, "/password")})
    assert response.status_code == 302
    signed_in.post("/logout", data={"csrf_token": csrf_token(signed_in, "/")})
    assert sign_in(signed_in, password=PASSWORD).status_code == 401
    assert sign_in(signed_in, password=new).status_code == 302


def test_an_empty_password_form_says_what_each_field_needs(signed_in):
    empty = {"current_password": "", "new_password": "", "confirm": ""}
    response = signed_in.post("/password", data={**empty, "csrf_token": csrf_token(signed_in, "/password")})
    text = page_text(response)
    assert response.status_code == 400
    for needed in ("Enter your current password.", "Choose a new password.", "Repeat the new password."):
        assert needed in text
    assert "This field is required" not in text


def test_a_page_behind_sign_in_says_so_in_the_words_of_the_button(client):
    client.get("/watches")
    assert "Sign in to see that page." in page_text(client.get("/login"))


def test_a_new_password_signs_out_every_other_browser_but_this_one(app, signed_in):
    def fresh(client):
        """`client`, its next request loading its own user and CSRF token: the test's app context (and so `g`,
        where Flask-Login and Flask-WTF keep them) is shared by every request of every client in this test."""
        g.pop("_login_user", None)
        g.pop("csrf_token", None)
        return client

    other, remembered = app.test_client(), app.test_client()
    assert sign_in(fresh(other)).status_code == 302
    assert sign_in(fresh(remembered), remember=True).status_code == 302
    with remembered.session_transaction() as session:
        session.clear()  # the browser closed: only its remember-me cookie is left
    assert fresh(remembered).get("/").status_code == 200
    new = "a brand new passphrase"
    data = {"current_password": PASSWORD, "new_password": new, "confirm": new}
    token = csrf_token(fresh(signed_in), "/password")
    assert signed_in.post("/password", data={**data, "csrf_token": token}).status_code == 302
    assert "Other browsers signed in to your account are signed out" in page_text(fresh(signed_in).get("/"))
    assert fresh(signed_in).get("/").status_code == 200
    with remembered.session_transaction() as session:
        session.clear()
    for browser in (other, remembered):
        response = fresh(browser).get("/")
        assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_error_pages_are_styled_and_lead_back(signed_in):
    response = signed_in.get("/no/such/page")
    assert response.status_code == 404 and "text/html" in response.content_type
    text = page_text(response)
    assert "Page not found" in text and "Back to the dashboard" in text
    api = signed_in.get("/api/v1/no-such-thing")
    assert api.status_code == 404 and api.get_json()["error"]["code"] == "NOT_FOUND"


def test_a_crash_shows_the_500_page(app, signed_in, monkeypatch):
    from app.services import dashboard

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(dashboard, "dashboard", broken)
    monkeypatch.setitem(app.config, "PROPAGATE_EXCEPTIONS", False)
    response = signed_in.get("/")
    assert response.status_code == 500
    assert "Something went wrong" in page_text(response) and "boom" not in response.get_data(as_text=True)


def test_too_many_sign_ins_get_the_429_page_with_retry_after(client):
    statuses = []
    for n in range(11):
        data = {"email": f"u{n}@example.com", "password": "x", "csrf_token": csrf_token(client)}
        response = client.post("/login", data=data)
        statuses.append(response.status_code)
    assert statuses[-1] == 429
    assert "Slow down" in page_text(response) and response.headers.get("Retry-After")


def test_equity_chart_is_not_drawn_for_an_account_without_fills(signed_in, ada):
    chart = signed_in.get(f"/accounts/{ada.accounts[0].id}/equity.json").get_json()
    [pane] = chart["panes"]
    assert pane["series"][0]["data"] == [] and len(pane["series"]) == 1
    assert chart["empty"] == f"{ada.accounts[0].name} has no fills yet: its curve starts with the first fill."
