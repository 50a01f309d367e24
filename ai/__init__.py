"""Indicator context, prompts, the Signal schema, providers, pricing and budget rules. Flask-free."""
