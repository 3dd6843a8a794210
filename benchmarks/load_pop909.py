"""Load every shared POP909 song, cold (fresh cache) then cached, and print counts and wall times.

    .venv/bin/python benchmarks/load_pop909.py [--root ../shared/pop909] [--structure ../shared/pop909-structure]
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

from harmonize.data import pop909
from harmonize.errors import StripeError

HERE = Path(__file__).resolve().parents[1]


def all_ids(root: Path) -> list[int]:
    return sorted(int(p.name) for p in root.iterdir() if p.is_dir() and p.name.isdigit())


def run(root: Path, structure: Path | None, chord_source: str, cache: Path, workers: int) -> tuple:
    ids = all_ids(root)
    t = time.perf_counter()
    songs, skipped = [], []
    if workers > 1:
        # load_split takes a split name; for "every folder" write a throwaway split over all ids
        tmp = Path(tempfile.mkdtemp())
        for i in ids:
            (tmp / f"{i:03d}").symlink_to(root / f"{i:03d}")
        (tmp / "split.json").write_text(json.dumps({"all": ids}))
        res = pop909.load_split(tmp, "all", structure, chord_source, cache_dir=cache, workers=workers)
        songs, skipped = list(res), res.skipped
    else:
        for i in ids:
            sd = None if structure is None else structure / f"{i:03d}"
            try:
                songs.append(pop909.load_song_cached(root / f"{i:03d}", sd, chord_source, cache))
            except StripeError as e:
                skipped.append((i, str(e)))
    return songs, skipped, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--root", type=Path, default=HERE.parent / "shared" / "pop909")
    ap.add_argument("--structure", type=Path, default=HERE.parent / "shared" / "pop909-structure")
    ap.add_argument("--chord-source", default="midi", choices=pop909.CHORD_SOURCES)
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    structure = args.structure if args.structure.exists() else None
    with tempfile.TemporaryDirectory() as cache:
        cache = Path(cache)
        for label in ("cold", "cached"):
            songs, skipped, dt = run(args.root, structure, args.chord_source, cache, args.workers)
            print(f"{label:>6}: {len(songs)} songs loaded, {len(skipped)} skipped, {dt:.1f} s wall "
                  f"(chord source {args.chord_source}, workers {args.workers})")
            for i, msg in skipped[:10]:
                print(f"        skipped {i:03d}: {msg}")
        size = sum(p.stat().st_size for p in cache.glob("*.pkl"))
        print(f" cache: {len(list(cache.glob('*.pkl')))} entries, {size / 2**20:.1f} MiB")
    steps = sum(s.n_steps for s in songs)
    print(f" total: {steps} steps, {sum(s.n_bars for s in songs)} bars, "
          f"{sum(len(s.piano) for s in songs)} piano notes")


if __name__ == "__main__":
    main()
