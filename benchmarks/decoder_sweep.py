"""Sweep the chord decoder's settings END TO END on POP909 val (never test): what `stripe harmonize` gives.

Each val song's melody is written to a MIDI file (``--variant grid``: re-timed onto the annotated beats, a
DAW-like file; ``raw``: its own performance timing), read as `stripe harmonize` reads it (grid, key), and the
chord stage runs ONCE (``Harmonizer.chord_posteriors``); every decoder setting then goes through
``Harmonizer.decode`` -- the code path of `stripe harmonize` -- and is scored per annotated beat as
`stripe eval --end-to-end` scores it (root + maj/min accuracy against POP909's labels and POP909-CL's,
chord histogram entropy, and how often a bar the root + maj/min label changes, beside POP909's labels'). The grid's settings override the model folder's ``harmonizer.json``.

    python -m benchmarks.decoder_sweep --model models/pop909-beat
    python -m benchmarks.decoder_sweep --model runs/x/final --songs 30 --json-out runs/sweep.json
    python -m benchmarks.decoder_sweep --sweep melody_fit_weight=0,0.5,1 --sweep phrase_cadence_weight=0,0.5
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from pathlib import Path

import numpy as np

# the decoder settings swept (each a harmonizer.json "decoding" key; "transitions_weight" scales the learnt
# transitions of transitions.json)
SWEEP = {
    "prior_weight": (0.5, 0.75),
    "key_weight": (0.5, 1.0),
    "transitions_weight": (0.25, 0.5),
    "melody_fit_weight": (0.0, 0.5, 1.0),
    "phrase_cadence_weight": (0.0, 0.25, 0.5, 1.0),
}


def with_setting(decoding: dict, setting: dict) -> dict:
    """The model folder's decoding settings with ``setting`` applied."""
    out = dict(decoding)
    for k, v in setting.items():
        if k == "transitions_weight":
            if out.get("transitions") is not None:  # 0: decode without them (the hand-set penalties)
                out["transitions"] = {**out["transitions"], "weight": v} if v else None
        else:
            out[k] = v
    return out


def prepare(song_dir: Path, harmonizer, variant: str, workdir: Path, cl_root: Path | None,
            annotated_key: bool = False):
    """One val song read from a melody-only file as `stripe harmonize` reads it, with its chord-stage
    output: (song, key, logp, bar_rep, file grid in annotated seconds, annotated song, references).
    ``annotated_key``: POP909's own key instead of the estimate (an oracle: a user's file has no annotations)."""
    from harmonize.data.pop909 import load_song_cached
    from harmonize.end_to_end import read_variant
    from harmonize.structure import chords_per_step, estimate_key

    annotated = load_song_cached(song_dir)
    song, file_grid = read_variant(song_dir, variant, workdir)  # as `stripe eval --end-to-end` reads it
    key = annotated.key if annotated_key and annotated.key is not None else estimate_key(song)
    logp, bar_rep = harmonizer.chord_posteriors(song, key)
    refs = {"pop909": chords_per_step(annotated.chords, annotated.n_steps)}
    if cl_root is not None:
        from harmonize.data.pop909_cl import song_cl_chords
        from harmonize.errors import StripeError

        try:
            cl = song_cl_chords(cl_root, song_dir, annotated.grid)
            refs["cl"] = chords_per_step(cl, annotated.n_steps)
        except StripeError:
            pass  # POP909-CL's notes of this song cannot be aligned: scored against POP909's labels only
    return song, key, logp, bar_rep, file_grid, annotated, refs


def score(cases, harmonizer, decoding: dict, harmonic_rhythm: str = "auto") -> dict:
    """Mean per-song root + maj/min accuracy (per reference) and CHE of one decoder setting."""
    from harmonize.end_to_end import chords_per_annotated_step
    from harmonize.metrics import chord_accuracy, chord_frames, chord_histogram_entropy

    rows = []
    for song, key, logp, bar_rep, file_grid, annotated, refs in cases:
        spans = harmonizer.decode(song, key, logp, bar_rep, decoding, harmonic_rhythm=harmonic_rhythm)
        pred = chords_per_annotated_step(spans, file_grid, annotated.grid)
        frames = chord_frames(pred)  # one per annotated beat
        row = {"CHE": chord_histogram_entropy(frames), "changes_a_bar": changes_a_bar(frames, annotated.grid)}
        for name, ref in refs.items():
            row[f"acc_{name}"] = chord_accuracy(pred, ref, level="majmin")
        rows.append(row)
    names = sorted({k for r in rows for k in r})
    return {k: float(np.nanmean([r.get(k, np.nan) for r in rows])) for k in names}


def changes_a_bar(frames, grid) -> float:
    """How often a bar the root + maj/min label of ``frames`` (one per beat of ``grid``) changes."""
    from harmonize.decode import median_beats_per_bar
    from harmonize.metrics import change_rate

    return change_rate(frames) * median_beats_per_bar(grid.beat_starts, grid.bar_starts)


def _setting_value(text: str) -> float | bool | str:
    """A swept value: true / false for a switch, a number, else a name (``intro_outro=rest,auto``)."""
    text = text.strip()
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        return float(text)
    except ValueError:
        return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/pop909")
    ap.add_argument("--cl", default="../shared/pop909-cl", help="POP909-CL folder ('' to skip)")
    ap.add_argument("--model", default=None, help="harmonizer folder (default: bundled)")
    ap.add_argument("--variant", default="grid", choices=("grid", "raw"))
    ap.add_argument("--songs", type=int, default=0, help="first N val songs (0: all)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--sweep", action="append", default=[], metavar="NAME=V1,V2",
                    help="sweep these values of a setting instead of the default grid (repeatable)")
    ap.add_argument("--harmonic-rhythm", choices=("auto", "bar", "half", "beat"), default="auto",
                    help="stripe harmonize --harmonic-rhythm for every setting")
    ap.add_argument("--key", choices=("estimated", "annotated"), default="estimated",
                    help="the key estimated from the melody (what stripe harmonize does) or POP909's annotated "
                    "key (an oracle figure: how much a better key estimate could add)")
    ap.add_argument("--json-out", type=Path, default=None)
    ap.add_argument("--force", action="store_true", help="overwrite an existing --json-out")
    args = ap.parse_args()
    grid = {name: tuple(_setting_value(v) for v in values.split(",")) for name, values in
            (item.split("=", 1) for item in args.sweep)} if args.sweep else SWEEP
    from harmonize.errors import StripeError
    from harmonize.hub import DEFAULT_DECODING

    unknown = [name for name in grid if name not in DEFAULT_DECODING and name != "transitions_weight"]
    if unknown:  # a misspelt setting would sweep nothing and print the same figure for every value
        raise StripeError(f"unknown decoding setting {unknown[0]!r}", "--sweep")
    if "beat_window_overlap" in grid:  # the chord stage runs once, before the sweep: it would change nothing
        raise StripeError("beat_window_overlap is read by the chord stage, which runs once before the sweep: set "
                          "it in the model folder's harmonizer.json instead", "--sweep")

    import torch

    from harmonize.commands import save_json
    from harmonize.data.pop909 import split_song_ids
    from harmonize.io.outputs import Outputs
    from harmonize.pipeline import Harmonizer

    guard = Outputs([args.json_out], force=args.force)  # refused before the long work, as stripe's own outputs

    torch.set_num_threads(args.threads)
    root = Path(args.data)
    cl_root = Path(args.cl) if args.cl and (Path(args.cl) / "POP909_processed").is_dir() else None
    harmonizer = Harmonizer.load(args.model)
    ids = [i for i in split_song_ids("val", root) if (root / f"{i:03d}").is_dir()]
    ids = ids[: args.songs] if args.songs else ids
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        cases = [prepare(root / f"{i:03d}", harmonizer, args.variant, Path(tmp), cl_root, args.key == "annotated")
                 for i in ids]
    print(f"python -m benchmarks.decoder_sweep --model {args.model} --variant {args.variant} --songs {args.songs} "
          f"--harmonic-rhythm {args.harmonic_rhythm} --key {args.key}"
          + ("  (ORACLE: POP909's annotated keys)" if args.key == "annotated" else ""))
    print(f"{len(cases)} val songs ({args.variant} files), chord stage run in {time.perf_counter() - t0:.0f} s; "
          f"model {harmonizer.source}")
    bundled = score(cases, harmonizer, harmonizer.decoding, args.harmonic_rhythm)
    print("bundled settings: " + "  ".join(f"{k} {v:.3f}" for k, v in bundled.items()))
    rows = []
    for values in itertools.product(*grid.values()):
        setting = dict(zip(grid, values, strict=True))
        rows.append((setting, score(cases, harmonizer, with_setting(harmonizer.decoding, setting), args.harmonic_rhythm)))
    rows.sort(key=lambda r: -r[1]["acc_pop909"])
    from harmonize.metrics import chord_frames

    reference = np.nanmean([changes_a_bar(chord_frames(refs["pop909"]), annotated.grid)
                         for *_, annotated, refs in cases])
    print(f"POP909's labels change {reference:.2f} times a bar (root + maj/min, N a label)")
    cols = [c for c in ("acc_pop909", "acc_cl", "CHE", "changes_a_bar") if c in rows[0][1]]
    print("| " + " | ".join(grid) + " | " + " | ".join(cols) + " |")
    print("|---" * (len(grid) + len(cols)) + "|")
    for setting, sc in rows[:15]:
        print("| " + " | ".join(str(v) for v in setting.values()) + " | "
              + " | ".join(f"{sc[c]:.3f}" for c in cols) + " |")
    for che in (1.83, 1.9):  # the issue's target: CHE within 0.3 of the annotations' (2.13)
        ok = [r for r in rows if r[1]["CHE"] >= che]
        if ok:
            print(f"most accurate with CHE >= {che}: {ok[0][0]} -> "
                  + "  ".join(f"{c} {ok[0][1][c]:.3f}" for c in cols))
    with guard:
        save_json({"bundled": bundled, "sweep": rows}, args.json_out, guard)


if __name__ == "__main__":
    from harmonize.errors import run_script

    run_script(main)
