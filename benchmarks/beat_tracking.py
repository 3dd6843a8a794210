"""Beat and downbeat F-measure (±70 ms) on POP909, from the MELODY track alone: the file's own grid
(what stripe used before, and still uses for quantized files), beats inferred from the notes (``notes``),
and what ``stripe harmonize`` now uses on the melody-only file (``auto``: the file's grid when its notes
sit on it, its beats with bars from the notes when its bars are one beat long, else inferred).

    python benchmarks/beat_tracking.py [--data ../shared/pop909] [--split val] [--songs N]
    python benchmarks/beat_tracking.py --fit        # refit the onset and downbeat models on train, print them

The reference is each song's ``beat_midi.txt`` (beats, and the bar starts ``pop909.read_beats`` picks).
Tune on train/val only; the test songs are withheld.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harmonize import beats as bt  # noqa: E402
from harmonize.data.pop909 import read_beats, split_song_ids  # noqa: E402


def song_notes(song_dir: Path):
    """MELODY notes (onsets, durations, pitches, velocities) in seconds, the file's own beats and bar starts
    as ``read_song`` builds its grid (tempo map and time signatures), and the beats and bar starts that
    ``stripe harmonize`` uses on the melody alone (``--grid auto``)."""
    import tempfile

    import pretty_midi

    from harmonize.end_to_end import write_raw_melody
    from harmonize.io.midi import build_grid, read_song

    pm = pretty_midi.PrettyMIDI(str(song_dir / f"{song_dir.name}.mid"))
    mel = next(i for i in pm.instruments if i.name.strip().upper() == "MELODY")
    notes = sorted((n for n in mel.notes if n.end > n.start), key=lambda n: n.start)
    on = np.array([n.start for n in notes])
    dur = np.array([n.end - n.start for n in notes])
    pitch = np.array([n.pitch for n in notes])
    vel = np.array([n.velocity for n in notes])
    grid = build_grid(pm, pm.time_to_tick(float((on + dur).max())))
    file_beats = grid.step_times[grid.beat_starts]
    file_bars = grid.step_times[grid.bar_starts]
    with tempfile.TemporaryDirectory() as tmp:
        song = read_song(write_raw_melody(song_dir / f"{song_dir.name}.mid", Path(tmp) / "m.mid"))
    auto = (song.grid.step_times[song.grid.beat_starts], song.grid.step_times[song.grid.bar_starts],
            song.grid_source)
    return on, dur, pitch, vel, float(pm.get_tempo_changes()[1][0]), file_beats, file_bars, auto


def load(root: Path, split: str, limit: int):
    ids = [i for i in split_song_ids(split, root) if (root / f"{i:03d}").is_dir()]
    if limit:
        ids = ids[:limit]
    out = []
    for i in ids:
        d = root / f"{i:03d}"
        beats, flags, per_bar = read_beats(d / "beat_midi.txt")
        out.append((i, song_notes(d), beats, flags, per_bar))
    return out


def fit_downbeats(songs):
    """Logistic regression of the bar-start flags on ``beat_features`` at the annotated beats."""
    xs, ys = [], []
    for _i, (on, dur, pitch, _vel, _tempo, _fb, _fbar, _auto), beats, flags, _per_bar in songs:
        xs.append(bt.beat_features(beats, on, dur, pitch))
        ys.append(flags.astype(float))
    return fit(np.concatenate(xs), np.concatenate(ys))


def fit_onsets(songs, tolerance: float = 0.1):
    """Logistic regression of "this note starts within ``tolerance`` beats of an annotated beat" on
    ``onset_features`` (the period: the file's tempo, as the tracker's first pass finds it)."""
    xs, ys = [], []
    for _i, (on, dur, pitch, vel, tempo, _fb, _fbar, _auto), beats, _flags, _per_bar in songs:
        xs.append(bt.onset_features(on, dur, pitch, vel, 60.0 / tempo))
        k = np.interp(on, beats, np.arange(len(beats)))
        ys.append((np.abs(k - np.round(k)) < tolerance).astype(float))
    return fit(np.concatenate(xs), np.concatenate(ys))


def fit(x, y, steps: int = 3000, lr: float = 0.5, l2: float = 1e-3):
    """Logistic regression by gradient descent on standardised features; weights on the raw scale."""
    mu, sd = x.mean(0), x.std(0) + 1e-9
    z = (x - mu) / sd
    w, b = np.zeros(x.shape[1]), 0.0
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(z @ w + b)))
        g = z.T @ (p - y) / len(y) + l2 * w
        w -= lr * g
        b -= lr * float((p - y).mean())
    # back to the raw feature scale
    w_raw = w / sd
    b_raw = b - float((w * mu / sd).sum())
    return w_raw, b_raw


def evaluate(songs, tol: float = 0.07) -> dict:
    rows = {g: {"beat": [], "downbeat": []} for g in ("file", "notes", "auto")}
    seconds, sources = [], {}
    for _i, (on, dur, pitch, vel, tempo, file_beats, file_bars, auto), beats, flags, per_bar in songs:
        rows["file"]["beat"].append(bt.f_measure(file_beats, beats, tol))
        rows["file"]["downbeat"].append(bt.f_measure(file_bars, beats[flags], tol))
        rows["auto"]["beat"].append(bt.f_measure(auto[0], beats, tol))
        rows["auto"]["downbeat"].append(bt.f_measure(auto[1][1:], beats[flags], tol))  # bar 0: the grid's start
        sources[auto[2]] = sources.get(auto[2], 0) + 1
        t0 = time.perf_counter()
        inferred = bt.infer_beats(on, dur, pitch, vel, tempo_bpm=tempo, beats_per_bar=per_bar, start=0.0,
                                  end=float((on + dur).max()))  # as read_song asks
        seconds.append(time.perf_counter() - t0)
        rows["notes"]["beat"].append(bt.f_measure(inferred.times, beats, tol))
        rows["notes"]["downbeat"].append(bt.f_measure(inferred.times[inferred.downbeats], beats[flags], tol))
    return {g: {k: round(float(np.mean(v)), 4) for k, v in r.items()} for g, r in rows.items()} | {
        "tracker_s_mean": round(float(np.mean(seconds)), 4), "songs": len(songs), "auto_grid_sources": sources}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/pop909"))
    ap.add_argument("--split", default="val")
    ap.add_argument("--songs", type=int, default=0, help="only the first N songs (0: all)")
    ap.add_argument("--fit", action="store_true", help="fit the downbeat model on train and print it")
    args = ap.parse_args(argv)
    if args.split == "test":
        raise SystemExit("the test split is withheld: tune and report on train/val")
    if args.fit:
        train = load(args.data, "train", args.songs)
        w, b = fit_downbeats(train)
        wo, bo = fit_onsets(train)
        print(json.dumps({"DOWNBEAT_WEIGHTS": [round(float(x), 4) for x in w], "DOWNBEAT_BIAS": round(b, 4),
                          "ONSET_WEIGHTS": [round(float(x), 4) for x in wo], "ONSET_BIAS": round(bo, 4)}))
        return
    print(json.dumps(evaluate(load(args.data, args.split, args.songs)), indent=2))


if __name__ == "__main__":
    main()
