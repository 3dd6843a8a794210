"""Check POP909 labels against the loaded notes, on the val songs (or any split).

1. Key: ``harmonize.structure.estimate_key`` (melody+bridge, and melody only) vs ``key_audio.txt``.
2. Chord/piano alignment: per beat, the fraction of PIANO note-steps whose pitch class is in the
   chord chroma of ``chord_midi.txt``; per song, precision (same, over all note-steps) and recall
   (share of the chord's pitch classes the piano sounds, per step). Done with the chord grid as is
   and shifted by ±1, ±2 (16ths) and ±4, ±8 steps: the alignment is right if shift 0 is best.
   The same at shift 0 for Dai et al.'s ``finalized_chord.txt`` (melody-aligned, as loaded, and with
   one global offset = the first chord of chord_midi.txt, to show why the melody alignment is used).
3. chord_midi.txt vs finalized_chord.txt: per-beat agreement of chord class (root + folded quality)
   and of the exact chroma, on beats where both have a chord.

    .venv/bin/python benchmarks/validate_labels.py [--split val] [--root ../shared/pop909]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from harmonize.data import pop909
from harmonize.encode import pianoroll
from harmonize.song import Key
from harmonize.structure import chord_classes_per_step, chroma_per_step, estimate_key

HERE = Path(__file__).resolve().parents[1]
SHIFTS = (-8, -4, -2, -1, 0, 1, 2, 4, 8)


def key_relation(est: Key, ref: Key) -> str:
    if est == ref:
        return "same"
    if est.mode == ref.mode and (est.tonic - ref.tonic) % 12 in (5, 7):
        return "fifth"  # dominant or subdominant
    if est.mode != ref.mode:
        rel = (ref.tonic + 9) % 12 if ref.mode == "major" else (ref.tonic + 3) % 12
        if est.tonic == rel:
            return "relative"
        if est.tonic == ref.tonic:
            return "parallel"
    return "other"


def shifted(chroma: np.ndarray, k: int) -> np.ndarray:
    """Chord labels moved ``k`` steps later (zeros where nothing moves in)."""
    out = np.zeros_like(chroma)
    if k >= 0:
        out[k:] = chroma[: len(chroma) - k]
    else:
        out[:k] = chroma[-k:]
    return out


def piano_vs_chroma(piano_pc: np.ndarray, chroma: np.ndarray) -> dict:
    """piano_pc, chroma: [T,12] 0/1 (piano_pc counts note-steps per pitch class)."""
    T = len(chroma)
    has_chord = chroma.any(1)
    inside = (piano_pc * chroma).sum(1)  # note-steps in the chord, per step
    total = piano_pc.sum(1)
    beat_fracs = []
    for b in range(0, T - 3, 4):
        sl = slice(b, b + 4)
        n = total[sl][has_chord[sl]].sum()
        if n:
            beat_fracs.append(inside[sl][has_chord[sl]].sum() / n)
    ok = has_chord & (total > 0)
    prec = inside[ok].sum() / max(1, total[ok].sum())
    sounding = (piano_pc > 0).astype(np.float64)
    rec = ((sounding * chroma).sum(1)[ok] / chroma.sum(1)[ok]).mean() if ok.any() else np.nan
    return {"beat": float(np.mean(beat_fracs)) if beat_fracs else np.nan, "precision": float(prec),
            "recall": float(rec)}


def pc_roll(notes, T: int) -> np.ndarray:
    """[T,12] number of sounding notes per pitch class."""
    roll = pianoroll(notes, T).astype(np.int64)
    return np.stack([roll[:, pc::12].sum(1) for pc in range(12)], axis=1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--split", default="val")
    ap.add_argument("--root", type=Path, default=HERE.parent / "shared" / "pop909")
    ap.add_argument("--structure", type=Path, default=HERE.parent / "shared" / "pop909-structure")
    ap.add_argument("--cache", type=Path, default=None, help="cache folder (default: a temporary one)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    tmp = tempfile.TemporaryDirectory()
    cache = args.cache or Path(tmp.name)

    midi = pop909.load_split(args.root, args.split, args.structure, "midi", cache_dir=cache, workers=2)
    struct = pop909.load_split(args.root, args.split, args.structure, "structure", cache_dir=cache, workers=2)
    by_name = {s.name: s for s in struct}
    print(f"split {args.split}: {len(midi)} songs loaded, {midi.n_skipped} skipped, {len(midi.absent)} absent")

    # 1. keys
    rel_all = {"mel+bridge": [], "melody": []}
    for s in midi:
        rel_all["mel+bridge"].append(key_relation(estimate_key(s), s.key))
        rel_all["melody"].append(key_relation(estimate_key(replace(s, bridge=[])), s.key))
    print("\n1. key estimate vs key_audio.txt (main key), share of songs")
    print(f"   {'notes':<11} {'same':>6} {'5th/4th':>7} {'relat.':>6} {'parall.':>7} {'other':>6} {'same|rel|5th':>13}")
    for label, rels in rel_all.items():
        r = np.array(rels)
        share = {k: (r == k).mean() for k in ("same", "fifth", "relative", "parallel", "other")}
        near = share["same"] + share["relative"] + share["fifth"]
        print(f"   {label:<11} {share['same']:6.3f} {share['fifth']:7.3f} {share['relative']:6.3f} "
              f"{share['parallel']:7.3f} {share['other']:6.3f} {near:13.3f}")

    # 2. piano pitch classes vs chord chroma, grid shifts
    rows: dict[str, list[dict]] = {}
    agree_cls, agree_chroma, agree_names = [], [], []
    for s in midi:
        T = s.n_steps
        piano_pc = pc_roll(s.piano, T)
        chroma = chroma_per_step(s.chords, T).astype(np.int64)
        for k in SHIFTS:
            rows.setdefault(f"chord_midi shift {k:+d}", []).append(piano_vs_chroma(piano_pc, shifted(chroma, k)))
        t = by_name.get(s.name)
        if t is None:
            continue
        sc = chroma_per_step(t.chords, T).astype(np.int64)
        rows.setdefault("finalized (melody-aligned)", []).append(piano_vs_chroma(piano_pc, sc))
        for k in (-4, 4):
            rows.setdefault(f"finalized shift {k:+d}", []).append(piano_vs_chroma(piano_pc, shifted(sc, k)))
        # one global offset: Dai's origin at the first real chord of chord_midi.txt
        dai = pop909.read_structure_chords(args.structure / s.name[-3:] / "finalized_chord.txt")
        first = next((c.start for c in s.chords if not c.chord.is_none), 0)
        naive = pop909.place_structure_chords(dai, np.zeros(0, np.int64), np.zeros(0, np.int64), first, T)
        rows.setdefault("finalized (one offset)", []).append(
            piano_vs_chroma(piano_pc, chroma_per_step(naive, T).astype(np.int64)))
        # 3. per-beat agreement
        beats = np.arange(0, T, 4)
        ca, cb = chord_classes_per_step(s.chords, T)[beats], chord_classes_per_step(t.chords, T)[beats]
        both = (ca > 0) & (cb > 0)
        if both.any():
            agree_cls.append((ca[both] == cb[both]).mean())
            agree_names.append(s.name)
            agree_chroma.append((chroma[beats][both] == sc[beats][both]).all(1).mean())
        cn = chord_classes_per_step(naive, T)[beats]
        both_n = (ca > 0) & (cn > 0)
        rows.setdefault("_naive_cls", []).append({"beat": (ca[both_n] == cn[both_n]).mean() if both_n.any()
                                                  else np.nan, "precision": np.nan, "recall": np.nan})

    print("\n2. PIANO pitch classes inside the chord chroma (mean over songs)")
    print(f"   {'chord labels':<28} {'per-beat':>9} {'precision':>10} {'recall':>7}")
    for label, vals in rows.items():
        if label.startswith("_"):
            continue
        m = {k: np.nanmean([v[k] for v in vals]) for k in ("beat", "precision", "recall")}
        print(f"   {label:<28} {m['beat']:9.3f} {m['precision']:10.3f} {m['recall']:7.3f}")

    print("\n3. chord_midi.txt vs finalized_chord.txt, per beat where both have a chord (mean over songs)")
    print(f"   class (root+quality) agreement, melody-aligned: {np.mean(agree_cls):.3f}   "
          f"exact chroma: {np.mean(agree_chroma):.3f}   songs: {len(agree_cls)}")
    print(f"   class agreement with one global offset instead:  {np.nanmean([v['beat'] for v in rows['_naive_cls']]):.3f}")
    worst = np.argsort(agree_cls)[:3]
    print("   lowest class agreement: " + ", ".join(f"{agree_names[i]} {agree_cls[i]:.3f}" for i in worst))


if __name__ == "__main__":
    main()
