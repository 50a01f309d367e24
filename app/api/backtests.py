"""Backtests: routes are added by the issue 11 work in progress."""
