"""SQL implementations of the domain's ports and the queries the services share: budget ledger, response cache,
account book, candles and markets. Only `app/services/` imports this package; front ends never do."""

from sqlalchemy import Engine
from sqlalchemy.orm import Session


def engine_of(session: Session) -> Engine:
    """The engine behind `session`, for the ports that commit in their own short transactions (budget ledger,
    response cache). `get_bind()` answers `Engine | Connection`; `.engine` is the engine of either (an engine's is
    itself), so the sessions the app makes (bound to the engine) hand over that very engine."""
    return session.get_bind().engine
