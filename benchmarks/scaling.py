"""Resource bounds: wall time and peak memory of ``stripe harmonize`` for songs of 1 to 30 minutes.

    python benchmarks/scaling.py [--model FOLDER|random|tiny] [--minutes 1,2,4,8,16,30] [--threads 1]

One fresh subprocess per length (``python -m harmonize harmonize``, median of ``--runs``), so each point pays the same
start-up (imports, model loading) and its peak RSS is its own (``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss``
read after each child, which is a running maximum over children: the lengths run shortest first, so
each reading is that length's peak). The melodies are generated: a seeded random walk of quarter and
eighth notes at 120 bpm in 4/4 (30 bars a minute). Checks: time grows linearly (a least-squares line through the
points: its slope is the time per minute of music, R^2 >= 0.95) and peak memory stays under 2 GB. Prints a markdown table.

The model: the bundled one when installed, else random weights at the trained size (``random``, see
``benchmarks/harmonize_speed.py``), said in the output.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="bundled (default when installed), random, tiny, or a folder")
    parser.add_argument("--minutes", default="1,2,4,8,16,30")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3, help="median of this many runs per length")
    args = parser.parse_args()
    import harmonize_speed as helpers  # the sibling script (benchmarks/ is on sys.path when run)
    minutes = sorted(float(m) for m in args.minutes.split(","))
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        model, note = helpers.pick_model(args.model, tmp)
        def harmonize(song: Path, out: Path) -> tuple[float, dict]:
            walls = []
            for _ in range(args.runs):
                t0 = time.perf_counter()
                proc = subprocess.run([sys.executable, "-m", "harmonize", "harmonize", str(song), "-o", str(out),
                                       "--model", model, "--json", "--force"], env=env, capture_output=True,
                                      text=True)
                walls.append(time.perf_counter() - t0)
                if proc.returncode != 0:
                    raise SystemExit(f"{song.name} failed: {proc.stderr.strip()}")
            return statistics.median(walls), json.loads(proc.stdout)[0]

        # start-up alone (imports, model loading): a one-bar song
        startup, _ = harmonize(helpers.generated_melody(tmp / "one_bar.mid", bars=1, bpm=120.0), tmp / "o.mid")
        rows = []
        for m in minutes:
            song = helpers.generated_melody(tmp / f"{m:g}min.mid", bars=round(30 * m), bpm=120.0)
            wall, summary = harmonize(song, tmp / f"{m:g}min_out.mid")
            peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
            rows.append((m, wall, peak_mb, summary["n_chords"], summary["n_accompaniment_notes"]))

    print(f"{note}; {args.threads} thread(s); 120 bpm 4/4 generated melodies; start-up (1-bar song) "
          f"{startup:.2f} s; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print()
    print("| minutes | bars | wall s | (wall - start-up) / minute | peak RSS MB | chords | accompaniment notes |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for m, wall, peak, n_chords, n_notes in rows:
        print(f"| {m:g} | {round(30 * m)} | {wall:.2f} | {(wall - startup) / m:.3f} | {peak:.0f} | {n_chords} | {n_notes} |")
    import numpy as np

    x = np.array([r[0] for r in rows])
    y = np.array([r[1] for r in rows])
    slope, intercept = np.polyfit(x, y, 1)
    r2 = 1 - ((y - (slope * x + intercept)) ** 2).sum() / max(((y - y.mean()) ** 2).sum(), 1e-12)
    worst = max(r[2] for r in rows)
    print()
    print(f"least-squares fit: wall = {intercept:.2f} s + {slope:.3f} s per minute of music (R^2 {r2:.3f}: "
          f"{'linear' if r2 >= 0.95 else 'NOT linear'}); peak RSS {worst:.0f} MB "
          f"({'under' if worst < 2048 else 'OVER'} 2 GB)")


if __name__ == "__main__":
    main()
