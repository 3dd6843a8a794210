"""Key accuracy of ``estimate_key`` (melody only, as ``stripe harmonize`` sees a melody file) against
POP909's ``key_audio.txt`` (the song's main key), on the val split; the plain profile estimate beside it.

    python -m benchmarks.key_accuracy --data ../shared/pop909 [--split val]
"""

from __future__ import annotations

import argparse
import logging
from collections import Counter
from dataclasses import replace
from pathlib import Path

from harmonize.data import pop909
from harmonize.structure import estimate_key, estimate_key_profile


def relation(est, ref) -> str:
    if est == ref:
        return "same"
    if est.mode == ref.mode and (est.tonic - ref.tonic) % 12 in (5, 7):
        return "fifth"
    if est.mode != ref.mode and (est.tonic - ref.tonic) % 12 == (9 if ref.mode == "major" else 3):
        return "relative"
    return "other"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=Path("../shared/pop909"))
    ap.add_argument("--split", default="val")
    ap.add_argument("--cache", type=Path, default=None)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    songs = pop909.load_split(args.data, args.split, None, "midi", cache_dir=args.cache, workers=2)
    rows = {"profile only (old)": estimate_key_profile, "profile + scale/final/first (new)": estimate_key}
    print(f"split {args.split}: {len(songs)} songs, melody only, vs key_audio.txt main key")
    for name, fn in rows.items():
        rel = Counter(relation(fn(replace(s, bridge=[])), s.key) for s in songs if s.key is not None)
        n = sum(rel.values())
        print(f"{name:36s} accuracy {rel['same'] / n:.3f}  " +
              "  ".join(f"{k} {rel[k] / n:.3f}" for k in ("fifth", "relative", "other")))


if __name__ == "__main__":
    main()
