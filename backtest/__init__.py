"""Backtest engine, metrics and reports. Flask-free."""
