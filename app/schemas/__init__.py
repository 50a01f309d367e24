"""Request and response models (pydantic) shared by the CLI's --json output, the REST API and its OpenAPI document.

Money and quantities are strings of exact decimals (`"0.00084"`), times ISO-8601 UTC: a JSON float would lose them.
"""
