from decimal import Decimal

import pytest

from app.persistence.markets import UnknownExchangeError
from app.persistence.markets import bundled_catalog as market_catalog
from exchanges.markets import UnknownSymbolError
from tests.conftest import PROJECT_ROOT

DATA = PROJECT_ROOT / "data"


def test_bundled_snapshot_knows_binance_precision_and_minimums_offline():
    rules = market_catalog(DATA, "binance").rules("BTC/USDT")
    assert rules.amount_step == Decimal("0.00001")
    assert rules.price_step == Decimal("0.01")
    assert rules.min_amount == Decimal("0.00001")
    assert rules.min_notional == Decimal("5.0")
    assert rules.taker_fee == rules.maker_fee == Decimal("0.001")
    assert (rules.base, rules.quote) == ("BTC", "USDT")


def test_unknown_symbol_lists_the_known_ones():
    with pytest.raises(
        UnknownSymbolError, match=r"unknown symbol 'DOGE/USDT' on binance \(known: BTC/USDT, ETH/USDT\)"
    ):
        market_catalog(DATA, "binance").rules("DOGE/USDT")


def test_unknown_exchange_lists_the_bundled_snapshots():
    with pytest.raises(UnknownExchangeError, match=r"no markets snapshot for exchange 'kraken'.*bundled: binance"):
        market_catalog(DATA, "kraken")
