"""CLI start-up time next to a bare import of the libraries every command needs anyway.

Run: .venv/bin/python benchmarks/cli_startup.py [--repeats 5]
Prints one table; nothing here is a test. Each command runs as its own process, as a user would type it: one untimed
warm-up run each, then --repeats rounds of all commands in turn (so all see the same machine state), and the table
shows the median wall-clock seconds (what the goals are on) and, as a check on a busy machine, the median CPU seconds
(user + system) beside them. The peer is `python -c "import flask, flask_sqlalchemy, sqlalchemy, pandas"`: the floor any
command of this app starts from. Goals: `--help` within 2x the peer, an offline `analyze --signals rules:sma_cross`
(which needs pandas-ta for its indicators, but no provider SDK and no ccxt) within 3x.

Every command runs against a temporary instance (STEADYHAND_INSTANCE_PATH, its own SQLite file), set up once with
`db upgrade` and `seed-demo` before timing: the seed imports ~82k bundled candles and takes 15-20 s, untimed.
"""

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEER = "import flask, flask_sqlalchemy, sqlalchemy, pandas"
# (label, arguments after `flask --app wsgi`, goal as a multiple of the peer)
COMMANDS = (
    ("flask --app wsgi --help", ["--help"], 2.0),
    (
        "flask --app wsgi analyze BTC/USDT --signals rules:sma_cross",
        ["analyze", "BTC/USDT", "--signals", "rules:sma_cross"],
        3.0,
    ),
)


def flask_executable() -> str:
    beside = Path(sys.executable).parent / "flask"
    found = str(beside) if beside.exists() else shutil.which("flask")
    if found is None:
        raise SystemExit("no `flask` executable beside this Python or on PATH: run with .venv/bin/python")
    return found


def run(argv: list[str], environ: dict[str, str]) -> tuple[float, float]:
    """Wall-clock and CPU (user + system) seconds of one run of `argv`."""
    cpu_before = _children_cpu()
    start = time.perf_counter()
    completed = subprocess.run(argv, cwd=ROOT, env=environ, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if completed.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {completed.returncode}:\n{completed.stderr or completed.stdout}")
    return elapsed, _children_cpu() - cpu_before


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    flask = flask_executable()

    with tempfile.TemporaryDirectory() as tmp:
        environ = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
        environ |= {"STEADYHAND_INSTANCE_PATH": tmp, "STEADYHAND_ENV": "local", "LOG_LEVEL": "WARNING"}
        print(f"setting up a temporary instance in {tmp} (db upgrade, seed-demo; untimed) ...", flush=True)
        for setup in (["db", "upgrade"], ["seed-demo"]):
            run([flask, "--app", "wsgi", *setup], environ)

        peer = [sys.executable, "-c", PEER]
        argvs = [peer] + [[flask, "--app", "wsgi", *arguments] for _, arguments, _ in COMMANDS]
        for argv in argvs:
            run(argv, environ)
        runs: list[list[tuple[float, float]]] = [[] for _ in argvs]
        for _ in range(args.repeats):
            for timings, argv in zip(runs, argvs, strict=True):
                timings.append(run(argv, environ))

    walls = [statistics.median(wall for wall, _ in timings) for timings in runs]
    cpus = [statistics.median(cpu for _, cpu in timings) for timings in runs]
    print(f"\nmedian of {args.repeats} runs each, in the same run, after one warm-up run each")
    print("(cpu: user + system seconds, for comparison on a busy machine; the goals are on wall-clock seconds)")
    print(f"{'command':<72} {'seconds':>8} {'x peer':>7} {'cpu s':>6} {'x peer':>7} {'goal':>6}  result")
    print(f"{'peer: python -c ' + repr(PEER):<72} {walls[0]:>8.3f} {1:>7.2f} {cpus[0]:>6.2f} {1:>7.2f}")
    for (label, _, goal), wall, cpu in zip(COMMANDS, walls[1:], cpus[1:], strict=True):
        ratio = wall / walls[0]
        verdict = "met" if ratio <= goal else "NOT met"
        print(
            f"{label:<72} {wall:>8.3f} {ratio:>7.2f} {cpu:>6.2f} {cpu / cpus[0]:>7.2f} {f'<={goal:g}x':>6}  {verdict}"
        )


if __name__ == "__main__":
    main()
