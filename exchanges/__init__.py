"""Exchange interface, market data, paper and ccxt connectors, credential encryption. Flask-free."""
