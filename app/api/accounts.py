"""Accounts: read-only views of the user's money (accounts, balances, positions, orders, fills), an account's own kill
switch and its resume, and the state of the operator's global kill switch."""

from flask import Response, jsonify
from flask_openapi3 import Tag

from app import current_settings
from app.api import guard
from app.api.blueprint import api
from app.api.pagination import before_id, next_cursor
from app.extensions import db_session
from app.schemas.accounts import (
    AccountDetailOut,
    AccountList,
    AccountOut,
    AccountPath,
    KillSwitchIn,
    KillSwitchOut,
    OrderOut,
    OrderPage,
    OrdersQuery,
    PositionsOut,
    ResumedOut,
    TradeOut,
    TradePage,
    TradesQuery,
    TradingStateOut,
)
from app.services import accounts, kill_switch, orders, system_clock

TAG = Tag(name="accounts", description="paper and live accounts: balances, positions, orders, fills, kill switches")


@api.get("/accounts", tags=[TAG], responses={200: AccountList})
@guard.requires("read")
def list_accounts() -> Response:
    """The user's accounts, oldest first, with cash, equity and PnL in each one's quote currency.

    Equity values open positions at the latest price known offline (the replay's latest closed bar or the newest
    stored candle; never a network call): a position without one counts at its entry and is named in
    `unpriced_symbols`. `state_reason` says why an account is not ACTIVE.
    """
    summaries = accounts.account_summaries(db_session(), current_settings(), guard.user_id())
    body = AccountList(items=[AccountOut.summary(item) for item in summaries])
    return jsonify(body.model_dump(mode="json"))


@api.get("/accounts/<int:account_id>", tags=[TAG], responses={200: AccountDetailOut})
@guard.requires("read")
def get_account(path: AccountPath) -> Response:
    """One account: its balances per currency (the quote currency's cash, then each base asset its open positions
    hold), equity and PnL at the latest offline price, and its risk settings (defaults and overrides)."""
    detail = accounts.account_detail(db_session(), current_settings(), guard.user_id(), path.account_id)
    return jsonify(AccountDetailOut.detail(detail).model_dump(mode="json"))


@api.get("/accounts/<int:account_id>/positions", tags=[TAG], responses={200: PositionsOut})
@guard.requires("read")
def list_positions(path: AccountPath) -> Response:
    """The account's open positions with their unrealized PnL at the latest offline price, and its ten latest
    closed positions with their realized PnL; each with its notes (dust, unvalued fees, a failed exit)."""
    holdings = accounts.account_holdings(db_session(), current_settings(), guard.user_id(), path.account_id)
    return jsonify(PositionsOut.of(holdings).model_dump(mode="json"))


@api.get("/accounts/<int:account_id>/orders", tags=[TAG], responses={200: OrderPage})
@guard.requires("read")
def list_orders(path: AccountPath, query: OrdersQuery) -> Response:
    """The account's orders, newest first, optionally of one symbol and status; each with its fill, fee (in its own
    currency), error and the analysis whose decision placed it."""
    session = db_session()
    account = accounts.get_account(session, guard.user_id(), path.account_id)
    page = orders.account_orders(
        session,
        guard.user_id(),
        path.account_id,
        query.limit,
        before_id(query.cursor),
        symbol=query.symbol,
        status=query.status,
    )
    body = OrderPage(items=[OrderOut.of(item, account) for item in page.items], next_cursor=next_cursor(page))
    return jsonify(body.model_dump(mode="json"))


@api.get("/accounts/<int:account_id>/trades", tags=[TAG], responses={200: TradePage})
@guard.requires("read")
def list_trades(path: AccountPath, query: TradesQuery) -> Response:
    """The account's fills, newest first, optionally of one symbol: price, quantity, the fee as charged with its
    currency (and its value in the quote currency), and the realized PnL of a fill that closed quantity."""
    session = db_session()
    account = accounts.get_account(session, guard.user_id(), path.account_id)
    page = orders.account_trades(
        session, guard.user_id(), path.account_id, query.limit, before_id(query.cursor), symbol=query.symbol
    )
    body = TradePage(items=[TradeOut.of(item, account) for item in page.items], next_cursor=next_cursor(page))
    return jsonify(body.model_dump(mode="json"))


@api.post("/accounts/<int:account_id>/kill-switch", tags=[TAG], responses={200: TradingStateOut})
@guard.requires("trade")
def engage_kill_switch(path: AccountPath, body: KillSwitchIn) -> Response:
    """Halt the account: no new positions from its next order on, while exits, stops and take profits still run.

    The reason is audited and the owner notified; `POST /accounts/{id}/resume` releases it. 409 `CONFLICT` when
    the account is already HALTED.
    """
    session = db_session()
    kill_switch.engage_account(session, guard.user_id(), path.account_id, body.reason, system_clock())
    status = accounts.trading_status(session, guard.user_id(), path.account_id)
    return jsonify(TradingStateOut.of(status).model_dump(mode="json"))


@api.post("/accounts/<int:account_id>/resume", tags=[TAG], responses={200: ResumedOut})
@guard.requires("trade")
def resume(path: AccountPath) -> Response:
    """Let a HALTED or REDUCING account open positions again: a deliberate decision, audited.

    The drawdown is measured afresh from the account's equity now (cash plus open positions at cost): the answer
    gives that new peak, the state it left and why it had stopped. 409 `CONFLICT` when it is already ACTIVE.
    """
    session = db_session()
    resumed = accounts.resume_trading(session, guard.user_id(), path.account_id, system_clock())
    status = accounts.trading_status(session, guard.user_id(), path.account_id)
    return jsonify(ResumedOut.resumed(resumed, status).model_dump(mode="json"))


@api.get("/kill-switch", tags=[TAG], responses={200: KillSwitchOut})
@guard.requires("read")
def global_kill_switch() -> Response:
    """The operator's global kill switch: while engaged, no account opens a position (exits still run).

    Engaging or releasing it is an operator action (`kill-switch` CLI), not an API call.
    """
    return jsonify(KillSwitchOut.of(kill_switch.global_state(db_session())).model_dump(mode="json"))
