"""Candle import throughput on SQLite and PostgreSQL, next to pandas.to_sql on the same rows.

Run: .venv/bin/python benchmarks/candle_import.py [--postgres URL]
Prints one table; nothing here is a test. pandas.to_sql is the peer: it appends blindly (no validation,
no idempotency, floats instead of NUMERIC), so it marks the cost of the checks, not a target to beat.
"""

import argparse
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import psycopg
from flask_migrate import upgrade
from sqlalchemy import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app import create_app
from app.extensions import db
from app.persistence.candles import import_candles
from exchanges.candles import read_candle_csv

FILE = Path(__file__).resolve().parent.parent / "data" / "candles" / "binance_BTCUSDT_1h_2017-08_2021-06.csv"


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def bench(label: str, url: str, instance: Path) -> list[tuple[str, str, int, float]]:
    environ = {"STEADYHAND_INSTANCE_PATH": str(instance), "DATABASE_URL": url}
    app = create_app({"LOG_LEVEL": "WARNING"}, environ=environ)
    rows: list[tuple[str, str, int, float]] = []
    with app.app_context():
        upgrade()
        parse = timed(lambda: read_candle_csv(FILE, "1h"))
        candles = read_candle_csv(FILE, "1h")
        rows.append((label, "parse + validate CSV", len(candles), parse))

        def store() -> None:
            import_candles(db.session, "binance", "BTC/USDT", "1h", candles)
            db.session.commit()

        rows.append((label, "import (new rows)", len(candles), timed(store)))
        rows.append((label, "re-import (all stored)", len(candles), timed(store)))

        frame = pd.read_csv(FILE)
        rows.append(
            (
                label,
                "peer: pandas.to_sql",
                len(frame),
                timed(
                    lambda: frame.to_sql("candles_pandas", db.engine, if_exists="append", index=False, chunksize=5000)
                ),
            )
        )
        db.engine.dispose()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        results += bench("sqlite", f"sqlite:///{tmp}/bench.db", Path(tmp))
        schema = f"sh_bench_{uuid.uuid4().hex[:8]}"
        libpq = make_url(args.postgres).set(drivername="postgresql").render_as_string(hide_password=False)
        try:
            with psycopg.connect(libpq, autocommit=True, connect_timeout=3) as connection:
                connection.execute(f'CREATE SCHEMA "{schema}"')
        except psycopg.Error as error:
            print(f"PostgreSQL skipped: {error}".splitlines()[0])
        else:
            url = make_url(args.postgres).update_query_dict({"options": f"-csearch_path={schema}"})
            try:
                results += bench("postgresql", url.render_as_string(hide_password=False), Path(tmp))
            finally:
                with psycopg.connect(libpq, autocommit=True) as connection:
                    connection.execute(f'DROP SCHEMA "{schema}" CASCADE')

    print(f"\n{FILE.name}")
    print(f"{'database':<11} {'step':<24} {'rows':>7} {'seconds':>8} {'rows/s':>9}")
    for label, step, count, seconds in results:
        print(f"{label:<11} {step:<24} {count:>7,} {seconds:>8.3f} {count / seconds:>9,.0f}")


if __name__ == "__main__":
    main()
