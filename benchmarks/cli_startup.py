"""How long ``stripe --help`` takes, next to bare Python and ``import torch`` (median of 5 runs each).

    python benchmarks/cli_startup.py [--runs 5]

Each command runs in a fresh subprocess, so this is the wall time a user waits, import costs included.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time


def median_wall(cmd: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    stripe = shutil.which("stripe")
    cases = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "stripe --help": [stripe, "--help"] if stripe else [sys.executable, "-m", "harmonize", "--help"],
        "python -m harmonize --help": [sys.executable, "-m", "harmonize", "--help"],
        'python -c "import torch"': [sys.executable, "-c", "import torch"],
    }
    print(f"median wall time of {args.runs} runs (python {sys.version.split()[0]})")
    for name, cmd in cases.items():
        print(f"{name:30s} {median_wall(cmd, args.runs) * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
