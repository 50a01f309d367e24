"""SQL implementations of the domain's ports and the queries the services share: budget ledger, response cache,
account book, candles and markets. Only `app/services/` imports this package; front ends never do."""
