"""Pure, deterministic risk decisions and position sizing. No I/O, Flask-free."""
