"""Speed of ``stripe harmonize`` on a whole POP909 song: end to end against ``import torch``, and the
model time alone.

    python benchmarks/harmonize_speed.py [--midi FILE] [--model FOLDER|random|tiny] [--runs 5] [--threads 2]

- End to end: ``python -m harmonize harmonize SONG -o OUT --force`` in a fresh subprocess (imports,
  model loading, reading, both stages, writing), median of ``--runs``, next to ``python -c "import torch"``
  in the same conditions (``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` = ``--threads``).
  Targets: end to end at most 1 s more than ``import torch``.
- In process (the model already loaded): every stage of ``Harmonizer.__call__`` timed on its own, and
  ``HarmonizeResult.timings``; the forward passes of the two stages are the "model time" (target 0.3 s).

The song: POP909 song 196 (``../shared/pop909/196/196.mid``, 196 bars) when present, else 200 generated bars.
The model: the bundled one when installed; else ``random``: random weights at the size of the trained
stages (d_model 128, 2 layers, 4 heads, d_ff 256: the same compute, not the same notes), said in the output.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def random_harmonizer(folder: Path, d_model: int = 128, n_layers: int = 2) -> Path:
    """Both stages with random weights, shaped as ``runs/chord`` and ``runs/accompaniment`` train them."""
    import json

    import torch

    from harmonize.model.checkpoint import save_model
    from harmonize.model.transformer import StructureTransformer
    from harmonize.train import TrainConfig, model_config_for

    torch.manual_seed(0)
    stages = {
        "chord": dict(stage="chord", pe="rope_c", context="time", inputs=("melody", "meter"), causal=False),
        "accompaniment": dict(stage="accompaniment", pe="ropepool", context="bin",
                              inputs=("melody", "bridge", "chroma", "meter"), causal=True),
    }
    for name, kw in stages.items():
        cfg = TrainConfig(d_model=d_model, n_layers=n_layers, n_heads=4, d_ff=2 * d_model, **kw)
        model = StructureTransformer(model_config_for(cfg))
        if name == "accompaniment":
            with torch.no_grad():  # a sparse roll, roughly as many notes as a trained model plays
                model.head.bias -= 1.0
        save_model(model, folder / name, extra={"stage": name, "context": cfg.context,
                                                "inputs": list(cfg.inputs), "bars": 16})
    (folder / "harmonizer.json").write_text(json.dumps({"decoding": {}}))
    return folder


def pick_model(arg: str | None, tmp: Path) -> tuple[str, str]:
    from harmonize.hub import BUNDLED, bundled_names

    if arg in (None, "bundled") and BUNDLED in bundled_names():
        return BUNDLED, "bundled model"
    if arg in (None, "random"):
        return str(random_harmonizer(tmp / "random")), "random weights at the trained size (no bundled model)"
    if arg == "tiny":
        return str(random_harmonizer(tmp / "tiny", d_model=16, n_layers=1)), "tiny random model"
    return arg, f"model {arg}"


def generated_melody(path: Path, bars: int = 200, bpm: float = 80.0) -> Path:
    """A seeded random-walk melody of quarter and eighth notes, ``bars`` bars of 4/4."""
    import random

    import mido

    rng, res = random.Random(0), 480
    track = mido.MidiTrack([mido.MetaMessage("track_name", name="Melody"),
                            mido.MetaMessage("set_tempo", tempo=round(60e6 / bpm))])
    pitch, tick, end = 67, 0, bars * 4 * res
    while tick < end:
        length = rng.choice([res, res, res // 2])
        pitch = min(84, max(55, pitch + rng.choice([-2, -1, 0, 1, 2, 3, -3])))
        track += [mido.Message("note_on", note=pitch, velocity=80, time=0),
                  mido.Message("note_off", note=pitch, velocity=0, time=length)]
        tick += length
    mid = mido.MidiFile(ticks_per_beat=res)
    mid.tracks.append(track)
    mid.save(str(path))
    return path


def pick_song(arg: str | None, tmp: Path) -> Path:
    """The given file; else POP909 song 196 (196 bars, the longest of POP909); else 200 generated bars."""
    if arg:
        return Path(arg)
    full = ROOT.parent / "shared" / "pop909" / "196" / "196.mid"
    return full if full.exists() else generated_melody(tmp / "melody_200_bars.mid")


def wall(cmd: list[str], env: dict, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        times.append(time.perf_counter() - t0)
    return times


def in_process(song_path: Path, model: str, runs: int, threads: int, out: Path) -> dict[str, float]:
    """Median seconds of each stage of the pipeline, the model loaded once (the first run warms up)."""
    import numpy as np
    import torch

    from harmonize.binarize import binarize_merge
    from harmonize.decode import decode_chords, density_probs, roll_to_notes
    from harmonize.encode import encode_song
    from harmonize.io.midi import read_song, write_harmonized
    from harmonize.pipeline import HarmonizeOptions, Harmonizer
    from harmonize.song import Song
    from harmonize.structure import estimate_key

    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    h = Harmonizer.load(model)
    load_s = time.perf_counter() - t0
    rows: dict[str, list[float]] = {}

    def timed(name, fn, *a, **kw):
        t = time.perf_counter()
        value = fn(*a, **kw)
        rows.setdefault(name, []).append(time.perf_counter() - t)
        return value

    for _ in range(runs + 1):
        song = timed("read_song", read_song, song_path)
        key = timed("key estimation", estimate_key, song)
        grid, d = song.grid, h.decoding
        logp = timed("chord stage (encode + forward)", h.chord_step_log_probs,
                     Song(song.name, grid, song.melody, song.bridge, key=key), key)
        chords = timed("chord decoding (HMM)", decode_chords, logp, grid.beat_starts, grid.bar_starts,
                       song.n_steps, key=key, change_penalty=d["change_penalty"],
                       offbar_penalty=d["offbar_penalty"], none_penalty=d["none_penalty"],
                       key_weight=d["key_weight"], temperature=0.0, rng=np.random.default_rng(0))
        enc2 = timed("encode (accompaniment)", encode_song,
                     Song(song.name, grid, song.melody, song.bridge, chords=chords, key=key))
        logits = timed("accompaniment forward", h.accompaniment_logits, enc2, 0, song.n_steps)
        notes = timed("binarize + notes", lambda lg, d=d, bars=grid.bar_starts: roll_to_notes(
            binarize_merge(density_probs(lg, 1.0), d["threshold"], int(d["gap"])), split_at=bars), logits)
        timed("write MIDI", write_harmonized, song_path, out, chords, grid, notes, force=True, melody=song.melody)
        result = timed("Harmonizer() total", h, song, HarmonizeOptions())
        rows.setdefault("timings chords_s", []).append(result.timings["chords_s"])
        rows.setdefault("timings accompaniment_s", []).append(result.timings["accompaniment_s"])
    med = {k: statistics.median(v[1:]) for k, v in rows.items()}  # drop the warm-up run
    med["model load"] = load_s
    med["_notes"] = len(notes)
    med["_chords"] = len(chords)
    med["_bars"] = len(song.grid.bar_starts)
    med["_steps"] = song.n_steps
    return med


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--midi", help="the song (default: POP909 song 196, or 200 generated bars)")
    parser.add_argument("--model", help="bundled (default when installed), random, tiny, or a folder")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        model, model_note = pick_model(args.model, tmp)
        song = pick_song(args.midi, tmp)
        env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
        torch_s = wall([sys.executable, "-c", "import torch"], env, args.runs)
        e2e_s = wall([sys.executable, "-m", "harmonize", "harmonize", str(song), "-o", str(tmp / "out.mid"),
                      "--model", model, "--force"], env, args.runs)
        stages = in_process(song, model, args.runs, args.threads, tmp / "out2.mid")

    load = os.getloadavg()[0]
    shown = song.relative_to(ROOT.parent) if song.is_relative_to(ROOT.parent) else song.name
    print(f"song: {shown} "
          f"({stages['_bars']} bars, {stages['_steps']} steps); {model_note}; {args.threads} threads; "
          f"median of {args.runs}; load average {load:.1f} on {os.cpu_count()} CPUs")
    print()
    extra = statistics.median(e2e_s) - statistics.median(torch_s)
    model_s = stages["chord stage (encode + forward)"] + stages["accompaniment forward"]
    print("| measure | seconds | target |")
    print("|---|---:|---|")
    print(f"| `python -c \"import torch\"` | {statistics.median(torch_s):.3f} | |")
    print(f"| `stripe harmonize` end to end | {statistics.median(e2e_s):.3f} | |")
    print(f"| end to end minus `import torch` | {extra:.3f} | <= 1.0 {'ok' if extra <= 1.0 else 'MISSED'} |")
    print(f"| model time (both forward passes) | {model_s:.3f} | <= 0.3 {'ok' if model_s <= 0.3 else 'MISSED'} |")
    print()
    print("| stage (in process, model loaded) | seconds |")
    print("|---|---:|")
    for k, v in stages.items():
        if not k.startswith("_"):
            print(f"| {k} | {v:.4f} |")
    print(f"\n{stages['_chords']} chord spans, {stages['_notes']} accompaniment notes")


if __name__ == "__main__":
    main()
