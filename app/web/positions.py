"""Positions (`/positions`) of every account of the user: the open ones priced at the latest offline price (entry,
stop loss, take profit, latest price, unrealized PnL, notes such as dust), the closed ones with their realized PnL
(paged), the same filters as orders and trades, and a CSV of both (`?format=csv` or `/positions.csv`)."""

from typing import Any

from flask import Blueprint, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import login_required

from app.errors import InvalidInputError
from app.models import PositionStatus
from app.services import accounts, positions
from app.services.overview import PositionOverview
from app.services.positions import ClosedLine
from app.web.common import before_id, current_settings, db_session, owned, user_id
from app.web.orders import PAGE_SIZE, cell, csv_response, every_row, filter_refusal, parse_filters, typed_filters

blueprint = Blueprint("positions", __name__)

COLUMNS = [
    "position_id", "status", "account_id", "account", "symbol", "quantity", "entry_price", "quote_currency",
    "cost_basis", "stop_loss", "take_profit", "latest_price", "latest_price_at", "unrealized_pnl", "realized_pnl",
    "fees_paid", "opened_at", "closed_at", "notes",
]  # fmt: skip


@blueprint.get("/positions")
@login_required
def index() -> ResponseReturnValue:
    return _positions(as_csv=request.args.get("format") == "csv")


@blueprint.get("/positions.csv")
@login_required
def index_csv() -> ResponseReturnValue:
    return _positions(as_csv=True)


def _positions(as_csv: bool) -> ResponseReturnValue:
    session = db_session()
    typed = typed_filters()
    try:
        filters = parse_filters(typed)
        status = positions.position_status(typed["status"])
        before = before_id(request.args.get("before"))
    except InvalidInputError as error:
        return _page(typed, **filter_refusal(error)), 400
    held: list[PositionOverview] = []
    if status in (None, PositionStatus.OPEN):
        held = owned(positions.open_holdings, session, current_settings(), user_id(), filters)
    if as_csv:
        closed_rows: list[ClosedLine] = []
        if status in (None, PositionStatus.CLOSED):
            closed_rows = list(
                every_row(lambda limit, b: owned(positions.closed_positions, session, user_id(), filters, limit, b))
            )
        rows = [*(_open_row(item) for item in held), *(_closed_row(line) for line in closed_rows)]
        return csv_response("positions", COLUMNS, rows)
    closed = totals = None
    if status in (None, PositionStatus.CLOSED):
        closed = owned(positions.closed_positions, session, user_id(), filters, PAGE_SIZE, before)
        totals = owned(positions.closed_totals, session, user_id(), filters)
    return _page(typed, held=held, closed=closed, totals=totals, status=status)


def _page(typed: dict[str, str], **context: Any) -> str:
    args: dict[str, Any] = {name: value for name, value in typed.items() if value}
    return render_template(
        "positions/index.html",
        typed=typed,
        typed_args=args,
        accounts=accounts.list_accounts(db_session(), user_id()),
        statuses=[s.value for s in PositionStatus],
        csv_url=url_for("positions.index_csv", **args),
        **context,
    )


def _open_row(item: PositionOverview) -> list[str]:
    row, quote = item.position, item.quote
    values = [
        row.id, "open", item.account.id, item.account.name, row.symbol, row.quantity, row.entry_price,
        item.account.quote_currency, row.cost_basis, row.stop_loss, row.take_profit,
        quote.price if quote else None, quote.at if quote else None, item.unrealized_pnl, row.realized_pnl,
        row.fees_paid, row.opened_at, row.closed_at, "; ".join(item.notes),
    ]  # fmt: skip
    return [cell(value) for value in values]


def _closed_row(line: ClosedLine) -> list[str]:
    row, account = line.item.position, line.account
    values = [
        row.id, "closed", account.id, account.name, row.symbol, row.quantity, row.entry_price,
        account.quote_currency, row.cost_basis, row.stop_loss, row.take_profit, None, None, None, row.realized_pnl,
        row.fees_paid, row.opened_at, row.closed_at, "; ".join(line.item.notes),
    ]  # fmt: skip
    return [cell(value) for value in values]
