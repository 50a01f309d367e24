"""/positions on SQLite and PostgreSQL: open positions with entry, stop loss, take profit, the latest price (the
replay's, or "price unavailable") and unrealized PnL; closed ones with realized PnL, fees and dust notes; filters
(a bad one is a 400 naming the field and the value), the CSV download, sign-in, and another user's account -> 404."""

import csv
import io

from app import current_settings
from app.extensions import db
from app.services import overview
from app.web.formatting import signed_money
from tests.web.test_orders_pages import history


def test_positions_need_sign_in(client):
    for path in ("/positions", "/positions.csv"):
        response = client.get(path)
        assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_open_and_closed_positions_with_their_numbers(signed_in, ada):
    account, *_, closed, held = history(ada)
    quote = overview.latest_prices(db.session, current_settings())(account, "ETH/USDT")
    page = signed_in.get("/positions").get_data(as_text=True)
    row = page[page.index(f'data-testid="open-{held.id}"') :]
    row = row[: row.index("</tr>")]
    assert "2,500.00 USDT" in row and "2,400.00 USDT" in row and "2,700.00 USDT" in row  # entry, stop, target
    if quote is None:
        assert "price unavailable" in row
    else:
        assert f"{quote.price:,.2f} USDT" in row and "replay time" in row
        pnl = held.quantity * quote.price - held.cost_basis
        assert signed_money(pnl, "USDT") in row
    done = page[page.index(f'data-testid="closed-{closed.id}"') :]
    done = done[: done.index("</tr>")]
    assert "+1.50 USDT" in done and "0.07200 USDT" in done  # realized PnL, fees paid
    assert "dust 0.00000009 left" in done
    totals = page[page.index('data-testid="closed-totals"') :]
    assert "Realized PnL, Ada paper" in totals and "over 1 closed position;" in totals


def test_position_filters(signed_in, ada):
    *_, closed, held = history(ada)
    page = signed_in.get("/positions?status=closed").get_data(as_text=True)
    assert f"closed-{closed.id}" in page and "Open positions" not in page
    page = signed_in.get("/positions?status=open&symbol=ETH/USDT").get_data(as_text=True)
    assert f"open-{held.id}" in page and "Closed positions" not in page
    page = signed_in.get("/positions?since=2024-01-14").get_data(as_text=True)  # closed on the 13th
    assert f"closed-{closed.id}" not in page and "No closed position matches these filters." in page
    response = signed_in.get("/positions?status=maybe")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Status must be open or closed, got &#34;maybe&#34;" in page


def test_another_users_account_is_404(signed_in, ada, stranger):
    [theirs] = stranger.accounts
    assert signed_in.get(f"/positions?account={theirs.id}").status_code == 404
    assert signed_in.get(f"/positions.csv?account={theirs.id}").status_code == 404


def test_positions_csv(signed_in, ada):
    *_, closed, held = history(ada)
    response = signed_in.get("/positions?format=csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="steadyhand-positions-')
    rows = {r["position_id"]: r for r in csv.DictReader(io.StringIO(response.get_data(as_text=True)))}
    assert rows[str(held.id)]["status"] == "open"
    assert (rows[str(held.id)]["stop_loss"], rows[str(held.id)]["cost_basis"]) == ("2400", "25.025")
    assert rows[str(closed.id)]["realized_pnl"] == "1.5"
    assert rows[str(closed.id)]["closed_at"] == "2024-01-13T09:00:00+00:00"
    assert "dust 0.00000009 left" in rows[str(closed.id)]["notes"]


def test_no_positions_says_what_to_do_next(signed_in):
    page = signed_in.get("/positions").get_data(as_text=True)
    assert "No open positions." in page and "go to the dashboard" in page
