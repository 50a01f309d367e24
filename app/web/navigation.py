"""The site's menu: the pages a signed-in user moves between, in the order a trader uses them."""

from flask import Flask, current_app, request

# (endpoint, label); a page appears once its blueprint is registered.
MENU = (
    ("dashboard.index", "Dashboard"),
    ("watches.index", "Watches"),
    ("analyses.index", "Signals"),
    ("positions.index", "Positions"),
    ("orders.index", "Orders"),
    ("orders.trades", "Trades"),
    ("backtests.index", "Backtests"),
    ("scorecard.index", "Scorecard"),
    ("usage.index", "AI usage"),
    ("settings.index", "Settings"),
    ("api_keys.index", "API keys"),
)


def menu() -> list[tuple[str, str, bool]]:
    """(endpoint, label, is the current page's section) for every registered page of the menu."""
    here = (request.endpoint or "").split(".")[0]
    return [
        (endpoint, name, endpoint.split(".")[0] == here and (here != "orders" or endpoint == request.endpoint))
        for endpoint, name in MENU
        if endpoint in current_app.view_functions
    ]


def register(app: Flask) -> None:
    app.context_processor(lambda: {"menu": menu})
