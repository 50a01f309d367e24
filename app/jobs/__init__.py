"""What runs outside a request: background backtest runs (the scheduler and workers join them)."""
