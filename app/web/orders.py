"""Orders (`/orders`) and trades (`/trades`) of every account of the user: filters from the query string, keyset
pages, and the same lists as CSV (`?format=csv` or `/orders.csv`, `/trades.csv`) with ISO times, exact decimals and
each fee beside its own currency. Also the CSV and filter helpers the positions page shares."""

import csv
import io
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from flask import Blueprint, Response, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import login_required

from app.errors import InvalidInputError, shown
from app.services import accounts, orders
from app.services.orders import HistoryFilters, OrderLine, TradeLine
from app.services.pages import Page
from app.web.common import before_id, db_session, now, owned, reword, user_id
from exchanges.orders import OrderStatus

blueprint = Blueprint("orders", __name__)

PAGE_SIZE = 50
CSV_PAGE = 500  # rows read per service call while writing a CSV of every matching row
FILTER_NAMES = ("account", "symbol", "status", "side", "since", "until")
# The filter form's labels, for a refusal's message; the days read as prose inside a sentence too.
FILTER_WORDS = {
    "account": "Account",
    "symbol": "Symbol",
    "status": "Status",
    "side": "Side",
    "since": "From (UTC day)",
    "until": "Through (UTC day)",
    "before": "The page to start from",
}


def filter_refusal(error: InvalidInputError) -> dict[str, str | None]:
    """What the filter form shows for a refused filter: the message in the form's words and the field to mark."""
    message = reword(error.message, FILTER_WORDS, prose={"since", "until"})
    return {"error": message, "error_field": error.field}


@blueprint.get("/orders")
@login_required
def index() -> ResponseReturnValue:
    return _history("orders", orders.user_orders, _order_row, ORDER_COLUMNS)


@blueprint.get("/orders.csv")
@login_required
def index_csv() -> ResponseReturnValue:
    return _history("orders", orders.user_orders, _order_row, ORDER_COLUMNS, as_csv=True)


@blueprint.get("/trades")
@login_required
def trades() -> ResponseReturnValue:
    return _history("trades", orders.user_trades, _trade_row, TRADE_COLUMNS)


@blueprint.get("/trades.csv")
@login_required
def trades_csv() -> ResponseReturnValue:
    return _history("trades", orders.user_trades, _trade_row, TRADE_COLUMNS, as_csv=True)


def _history(
    noun: str,
    lister: Callable[..., Page[Any]],
    row: Callable[[Any], list[str]],
    columns: list[str],
    as_csv: bool = False,
) -> ResponseReturnValue:
    session = db_session()
    typed = typed_filters()
    try:
        filters = parse_filters(typed, with_status=noun == "orders")
        before = before_id(request.args.get("before"))
    except InvalidInputError as error:
        return _page(noun, typed, **filter_refusal(error)), 400
    if as_csv or request.args.get("format") == "csv":
        lines = every_row(lambda limit, before_id: owned(lister, session, user_id(), filters, limit, before_id))
        return csv_response(noun, columns, (row(line) for line in lines))
    page = owned(lister, session, user_id(), filters, PAGE_SIZE, before)
    totals = owned(orders.trade_totals, session, user_id(), filters) if noun == "trades" else None
    return _page(noun, typed, page=page, totals=totals)


def _page(noun: str, typed: dict[str, str], **context: Any) -> str:
    return render_template(
        f"orders/{noun}.html",
        typed=typed,
        typed_args={name: value for name, value in typed.items() if value},
        accounts=accounts.list_accounts(db_session(), user_id()),
        statuses=[] if noun == "trades" else [s.value for s in OrderStatus],
        csv_url=csv_url(f"orders.{'index' if noun == 'orders' else 'trades'}_csv"),
        **context,
    )


# Shared with the positions page.


def typed_filters() -> dict[str, str]:
    """The filter values as the user typed them (kept in the form when one is refused)."""
    return {name: request.args.get(name, "")[:80] for name in FILTER_NAMES}


def parse_filters(typed: Mapping[str, str], with_status: bool = False) -> HistoryFilters:
    """The filters (`InvalidInputError` naming a bad one); the order status only where `with_status` (orders)."""
    return orders.history_filters(
        account=typed["account"],
        symbol=typed["symbol"],
        status=typed["status"] if with_status else None,
        side=typed["side"],
        since=typed["since"],
        until=typed["until"],
    )


def csv_url(endpoint: str) -> str:
    """The CSV link of the list as filtered now."""
    args: dict[str, Any] = {k: v for k, v in request.args.items() if k in FILTER_NAMES and v}
    return url_for(endpoint, **args)


def every_row[T](lister: Callable[[int, int | None], Page[T]]) -> Iterator[T]:
    """Every row a keyset-paged service gives, newest first, page after page."""
    before: int | None = None
    while True:
        page = lister(CSV_PAGE, before)
        yield from page.items
        if page.next_before_id is None:
            return
        before = page.next_before_id


def csv_response(noun: str, columns: list[str], rows: Iterable[list[str]]) -> Response:
    """A CSV download named e.g. `steadyhand-orders-20240112-1600.csv` (UTC)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    writer.writerows(rows)
    name = f"steadyhand-{noun}-{now():%Y%m%d-%H%M}.csv"
    return Response(
        buffer.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def cell(value: object) -> str:
    """Exact decimals (`0.00084`, never a float), ISO-8601 times, '' for None."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return shown(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return str(getattr(value, "value", value))


ORDER_COLUMNS = [
    "order_id", "placed_at", "account_id", "account", "symbol", "side", "type", "status", "quantity",
    "filled_quantity", "average_fill_price", "quote_currency", "stop_loss", "take_profit", "fee", "fee_currency",
    "error_code", "error_message", "analysis_id", "client_order_id",
]  # fmt: skip
TRADE_COLUMNS = [
    "trade_id", "executed_at", "account_id", "account", "order_id", "position_id", "symbol", "side", "quantity",
    "price", "quote_currency", "fee", "fee_currency", "fee_value", "realized_pnl",
]  # fmt: skip


def _order_row(line: OrderLine) -> list[str]:
    order, account = line.record.order, line.account
    values = [
        order.id, order.created_at, account.id, account.name, order.symbol, order.side, order.order_type,
        order.status, order.quantity, order.filled_quantity, order.average_fill_price, account.quote_currency,
        order.stop_loss, order.take_profit, order.fee, order.fee_currency, order.error_code, order.error_message,
        line.record.analysis_id, order.client_order_id,
    ]  # fmt: skip
    return [cell(value) for value in values]


def _trade_row(line: TradeLine) -> list[str]:
    trade, account = line.trade, line.account
    values = [
        trade.id, trade.executed_at, account.id, account.name, trade.order_id, trade.position_id, trade.symbol,
        trade.side, trade.quantity, trade.price, account.quote_currency, trade.fee, trade.fee_currency,
        trade.fee_value, trade.realized_pnl,
    ]  # fmt: skip
    return [cell(value) for value in values]
