"""The settings pages: accounts (paper, live with keys shown masked), trading stop and resume, LLM keys, risk."""

import json
import logging
import re
from decimal import Decimal

from app import current_settings
from app.extensions import db
from app.models import Account, ExchangeCredential, LlmCredential
from app.services import accounts, credentials, notification_channels
from exchanges.vault import mask_secret
from risk import TradingState
from risk.config import MEANINGS
from tests.fakes.http_receiver import receiver_fixture  # noqa: F401
from tests.web.helpers import csrf_token, post_form

EXCHANGE_KEY = "AKexchangeKEY1234567890abcd"
EXCHANGE_SECRET = "SECRETexchange0987654321zyxw"
LLM_KEY = "sk-deepseekSECRET1234567890qrst"


def ada_account(ada) -> Account:
    return accounts.list_accounts(db.session, ada.id)[0]


def test_the_pages_need_sign_in(client, ada):
    for path in ("/settings", f"/settings/accounts/{1}/risk"):
        response = client.get(path)
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/login")


def test_the_page_lists_accounts_with_their_state(signed_in, ada):
    account = ada_account(ada)
    page = signed_in.get("/settings").get_data(as_text=True)
    assert "Ada paper" in page
    assert "100.00 USDT" in page
    assert "Active" in page
    assert f'href="/settings/accounts/{account.id}/risk"' in page
    assert f'action="/settings/accounts/{account.id}/halt"' in page
    assert "No provider keys of your own yet" in page
    assert "No notification channels yet" in page


def test_a_paper_account_is_added(signed_in, ada):
    response = post_form(
        signed_in, "/settings/accounts/paper", {"name": "Savings", "starting_balance": "250.50"}, "/settings"
    )
    assert response.status_code == 302
    added = [a for a in accounts.list_accounts(db.session, ada.id) if a.name == "Savings"]
    assert [a.starting_balance for a in added] == [Decimal("250.50")]
    page = signed_in.get("/settings").get_data(as_text=True)
    assert f"Paper account #{added[0].id} Savings opened with 250.50 USDT." in page
    assert "250.50 USDT" in page


def test_a_bad_paper_account_is_refused_on_its_field_with_what_was_typed(signed_in, ada):
    response = post_form(signed_in, "/settings/accounts/paper", {"name": "Tiny", "starting_balance": "5"}, "/settings")
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "Starting balance (USDT) must be between 10 and 1,000,000 USDT, got 5" in page
    assert 'value="Tiny"' in page and 'value="5"' in page
    response = post_form(
        signed_in, "/settings/accounts/paper", {"name": "Ada paper", "starting_balance": "50"}, "/settings"
    )
    assert response.status_code == 400
    assert "you already have an account named &#34;Ada paper&#34;" in response.get_data(as_text=True)
    assert len(accounts.list_accounts(db.session, ada.id)) == 1


def test_a_live_account_keeps_its_keys_encrypted_and_shows_them_masked(signed_in, ada, caplog):
    caplog.set_level(logging.DEBUG)
    data = {"name": "Binance live", "exchange_id": "binance", "api_key": EXCHANGE_KEY, "api_secret": EXCHANGE_SECRET}
    response = post_form(signed_in, "/settings/accounts/live", data, "/settings")
    assert response.status_code == 302
    [live] = [a for a in accounts.list_accounts(db.session, ada.id) if a.name == "Binance live"]
    credential = db.session.get(ExchangeCredential, live.credential_id)
    assert EXCHANGE_KEY not in credential.api_key_encrypted
    assert (
        credentials.vault(signed_in.application.config["STEADYHAND_SETTINGS"] if False else current_settings()).decrypt(
            credential.api_secret_encrypted
        )
        == EXCHANGE_SECRET
    )
    page = signed_in.get("/settings").get_data(as_text=True)
    assert mask_secret(EXCHANGE_KEY) in page
    assert "Binance live" in page and "Live on binance" in page
    assert EXCHANGE_KEY not in page and EXCHANGE_SECRET not in page
    assert EXCHANGE_KEY not in caplog.text and EXCHANGE_SECRET not in caplog.text


def test_a_refused_live_account_never_echoes_the_keys(signed_in, ada, caplog):
    caplog.set_level(logging.DEBUG)
    data = {
        "name": "Live",
        "exchange_id": "binance",
        "api_key": EXCHANGE_KEY,
        "api_secret": EXCHANGE_SECRET,
        "base_url": "http://example.com",
    }
    response = post_form(signed_in, "/settings/accounts/live", data, "/settings")
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "Exchange API address (optional) " in page  # the message names the field by its label
    assert 'value="Live"' in page and 'value="http://example.com"' in page
    assert EXCHANGE_KEY not in page and EXCHANGE_SECRET not in page
    assert "enter them again" in page
    response = post_form(
        signed_in, "/settings/accounts/live", {**data, "base_url": "", "exchange_id": "nosuchx"}, "/settings"
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert 'id="exchange_id-error"' in page and "nosuchx" in page
    assert EXCHANGE_KEY not in page and EXCHANGE_SECRET not in page
    response = post_form(signed_in, "/settings/accounts/live", {**data, "base_url": "", "api_secret": ""}, "/settings")
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "Enter the exchange API secret." in page
    assert EXCHANGE_KEY not in page
    assert EXCHANGE_KEY not in caplog.text and EXCHANGE_SECRET not in caplog.text
    assert db.session.query(ExchangeCredential).count() == 0


def test_llm_keys_are_set_replaced_shown_masked_and_deleted(signed_in, ada, caplog):
    caplog.set_level(logging.DEBUG)
    response = post_form(signed_in, "/settings/llm-keys", {"provider": "deepseek", "api_key": LLM_KEY}, "/settings")
    assert response.status_code == 302
    page = signed_in.get("/settings").get_data(as_text=True)
    assert f"DeepSeek key saved: {mask_secret(LLM_KEY)}." in page
    assert LLM_KEY not in page
    replacement = LLM_KEY.replace("SECRET", "OTHERS")
    post_form(signed_in, "/settings/llm-keys", {"provider": "deepseek", "api_key": replacement}, "/settings")
    assert credentials.provider_keys(db.session, current_settings(), ada.id)["deepseek"] == replacement
    assert [key.hint for key in credentials.llm_keys(db.session, ada.id)] == [mask_secret(replacement)]
    response = post_form(signed_in, "/settings/llm-keys/deepseek/delete", {}, "/settings")
    assert response.status_code == 302
    assert credentials.llm_keys(db.session, ada.id) == []
    assert post_form(signed_in, "/settings/llm-keys/deepseek/delete", {}, "/settings").status_code == 404
    assert LLM_KEY not in caplog.text and replacement not in caplog.text


def test_an_empty_llm_key_is_refused_on_its_field(signed_in, ada):
    response = post_form(signed_in, "/settings/llm-keys", {"provider": "claude", "api_key": "  "}, "/settings")
    assert response.status_code == 400
    assert "Enter the provider&#39;s API key." in response.get_data(
        as_text=True
    ) or "API key must not be empty" in response.get_data(as_text=True)
    assert db.session.query(LlmCredential).count() == 0


def test_forms_without_a_csrf_token_are_refused(signed_in, ada):
    account = ada_account(ada)
    csrf_token(signed_in, "/settings")
    for path, data in (
        ("/settings/accounts/paper", {"name": "X", "starting_balance": "100"}),
        ("/settings/llm-keys", {"provider": "deepseek", "api_key": LLM_KEY}),
        (f"/settings/accounts/{account.id}/halt", {}),
        (f"/settings/accounts/{account.id}/risk", {"max_drawdown_pct": "20"}),
    ):
        assert signed_in.post(path, data=data).status_code == 400, path
    db.session.expire_all()
    assert db.session.get(Account, account.id).trading_state is TradingState.ACTIVE


def test_stop_and_resume_trading_go_back_where_they_came_from(signed_in, ada):
    account = ada_account(ada)
    response = post_form(
        signed_in, f"/settings/accounts/{account.id}/halt", {"reason": "going on holiday"}, "/settings"
    )
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/settings#accounts")  # no referrer: back to settings
    view = accounts.risk_view(db.session, ada.id, account.id)
    assert view.trading_state is TradingState.HALTED
    assert view.state_reason == "kill switch: going on holiday"
    page = signed_in.get("/settings").get_data(as_text=True)
    assert "kill switch: going on holiday" in page and "Halted" in page
    assert f'action="/settings/accounts/{account.id}/resume"' in page

    token = csrf_token(signed_in, "/settings")
    response = signed_in.post(
        f"/settings/accounts/{account.id}/resume",
        data={"csrf_token": token},
        headers={"Referer": "http://localhost/?from=dashboard"},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/?from=dashboard"
    db.session.expire_all()
    assert db.session.get(Account, account.id).trading_state is TradingState.ACTIVE

    response = signed_in.post(
        f"/settings/accounts/{account.id}/resume",
        data={"csrf_token": token},
        headers={"Referer": "https://evil.example/"},
    )
    assert response.headers["Location"].endswith("/settings#accounts")
    assert f"account #{account.id} is already ACTIVE" in signed_in.get("/settings").get_data(as_text=True)


def test_a_stop_without_reason_records_the_default_one(signed_in, ada):
    account = ada_account(ada)
    post_form(signed_in, f"/settings/accounts/{account.id}/halt", {}, "/settings")
    assert accounts.risk_view(db.session, ada.id, account.id).state_reason == (
        "kill switch: stopped by its owner from the web page"
    )


def test_another_users_account_is_a_404(signed_in, ada, stranger):
    theirs = accounts.list_accounts(db.session, stranger.id)[0]
    assert signed_in.get(f"/settings/accounts/{theirs.id}/risk").status_code == 404
    for action in ("halt", "resume", "risk"):
        response = post_form(
            signed_in, f"/settings/accounts/{theirs.id}/{action}", {"max_drawdown_pct": "20"}, "/settings"
        )
        assert response.status_code == 404, action
    db.session.expire_all()
    assert db.session.get(Account, theirs.id).trading_state is TradingState.ACTIVE
    assert db.session.get(Account, theirs.id).risk_settings == {}
    assert "Eve paper" not in signed_in.get("/settings").get_data(as_text=True)


def test_risk_page_shows_each_setting_in_words_with_its_default(signed_in, ada):
    account = ada_account(ada)
    page = signed_in.get(f"/settings/accounts/{account.id}/risk").get_data(as_text=True)
    assert "Maximum drawdown (%)" in page
    assert "Kill switch: equity this far below its peak switches to HALTED. Default: 15." in page
    assert "Default: all symbols." in page and "Default: off." in page
    assert 'placeholder="15"' in page
    text = re.sub(r"<[^>]+>", " ", page)  # what a reader sees, without attributes
    assert [name for name in MEANINGS if name in text] == []


def test_risk_settings_are_changed_and_reset(signed_in, ada):
    account = ada_account(ada)
    path = f"/settings/accounts/{account.id}/risk"
    response = post_form(signed_in, path, {"max_drawdown_pct": "20", "symbol_allowlist": "btc/usdt"}, path)
    assert response.status_code == 302
    assert "Risk settings saved: Maximum drawdown (%) 20; Symbols allowed (comma separated) btc/usdt." in (
        signed_in.get(path).get_data(as_text=True)
    )
    db.session.expire_all()
    assert db.session.get(Account, account.id).risk_settings == {
        "max_drawdown_pct": "20",
        "symbol_allowlist": "btc/usdt",
    }
    page = signed_in.get(path).get_data(as_text=True)
    assert 'value="20"' in page and 'value="BTC/USDT"' in page
    post_form(signed_in, path, {"max_drawdown_pct": "", "symbol_allowlist": "BTC/USDT"}, path)
    db.session.expire_all()
    assert db.session.get(Account, account.id).risk_settings == {"symbol_allowlist": "btc/usdt"}


def test_a_bad_risk_setting_is_refused_on_its_field_and_nothing_is_saved(signed_in, ada):
    account = ada_account(ada)
    path = f"/settings/accounts/{account.id}/risk"
    response = post_form(signed_in, path, {"max_drawdown_pct": "150", "cooldown_minutes": "30"}, path)
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert 'id="max_drawdown_pct-error"' in page
    assert "Maximum drawdown (%)" in page and "(got 150)" in page
    assert 'value="150"' in page and 'value="30"' in page
    response = post_form(signed_in, path, {"min_stop_pct": "12"}, path)
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert 'id="min_stop_pct-error"' in page
    assert "Closest stop (%) 12 conflicts with Furthest stop (%) 10" in page
    db.session.expire_all()
    assert db.session.get(Account, account.id).risk_settings == {}


# Notification channels: added masked, tested through the real delivery path to a local receiver.


def test_a_webhook_shows_its_secret_once_and_a_test_really_arrives(signed_in, ada, receiver, caplog):
    caplog.set_level(logging.DEBUG)
    url = f"{receiver.url}/hooks/steadyhand?token=tok123456789"
    response = post_form(
        signed_in, "/settings/channels", {"kind": "webhook", "url": url, "label": "My hook"}, "/settings"
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    [channel] = notification_channels.list_channels(db.session, ada.id)
    secret = re.search(r"whsec_[A-Za-z0-9_-]+", page).group(0)
    assert "shown only this once" in page
    assert url not in page and "tok123456789" not in page
    later = signed_in.get("/settings").get_data(as_text=True)
    assert secret not in later and url not in later
    assert channel.hint in later and "Every event" in later

    response = post_form(signed_in, f"/settings/channels/{channel.id}/test", {}, "/settings")
    assert response.status_code == 302
    [request] = receiver.requests
    assert request.path == "/hooks/steadyhand?token=tok123456789"
    assert json.loads(request.body)["event"] == "notification.test"
    assert f"Test sent to channel #{channel.id}" in signed_in.get("/settings").get_data(as_text=True)
    assert "tok123456789" not in caplog.text and secret not in caplog.text


def test_an_apprise_channel_with_chosen_events_and_a_failed_test(signed_in, ada, receiver):
    data = {
        "kind": "apprise",
        "url": f"json://127.0.0.1:{receiver.port}/apprise",
        "events": ["order.filled", "run.failed"],
    }
    assert post_form(signed_in, "/settings/channels", data, "/settings").status_code == 302
    [channel] = notification_channels.list_channels(db.session, ada.id)
    assert channel.events == ("order.filled", "run.failed")
    assert "Order filled, A run failed" in signed_in.get("/settings").get_data(as_text=True)
    receiver.answer(500)
    post_form(signed_in, f"/settings/channels/{channel.id}/test", {}, "/settings")
    assert len(receiver.requests) == 1
    assert f"Test to channel #{channel.id} not sent:" in signed_in.get("/settings").get_data(as_text=True)


def test_a_bad_channel_url_is_refused_on_its_field_without_echoing_it(signed_in, ada):
    url = "http://example.com/hook?token=secret987654321"
    response = post_form(signed_in, "/settings/channels", {"kind": "webhook", "url": url, "label": "Hook"}, "/settings")
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert 'id="url-error"' in page and "must use https" in page
    assert "secret987654321" not in page
    assert 'value="Hook"' in page
    response = post_form(signed_in, "/settings/channels", {"kind": "apprise", "url": "nope://x"}, "/settings")
    assert response.status_code == 400
    assert "has a scheme Apprise does not know" in response.get_data(as_text=True)
    assert notification_channels.list_channels(db.session, ada.id) == []


def test_a_channel_is_disabled_enabled_and_removed(signed_in, ada, receiver):
    added = notification_channels.add_webhook_channel(db.session, current_settings(), ada.id, f"{receiver.url}/h")
    db.session.commit()
    channel_id = added.channel.id
    assert post_form(signed_in, f"/settings/channels/{channel_id}/disable", {}, "/settings").status_code == 302
    assert not notification_channels.list_channels(db.session, ada.id)[0].enabled
    assert "Disabled" in signed_in.get("/settings").get_data(as_text=True)
    post_form(signed_in, f"/settings/channels/{channel_id}/enable", {}, "/settings")
    db.session.expire_all()
    assert notification_channels.list_channels(db.session, ada.id)[0].enabled
    post_form(signed_in, f"/settings/channels/{channel_id}/remove", {}, "/settings")
    assert notification_channels.list_channels(db.session, ada.id) == []


def test_another_users_channel_is_a_404(signed_in, ada, stranger, receiver):
    theirs = notification_channels.add_webhook_channel(db.session, current_settings(), stranger.id, receiver.url)
    db.session.commit()
    for action in ("test", "disable", "enable", "remove"):
        response = post_form(signed_in, f"/settings/channels/{theirs.channel.id}/{action}", {}, "/settings")
        assert response.status_code == 404, action
    assert receiver.requests == []
    assert len(notification_channels.list_channels(db.session, stranger.id)) == 1
