"""The paper's experiment grid at laptop scale: {RoPE(C), F-StrIPE1, RoPEPool} x {TIME, REP, KEY, BIN}.

Each cell trains the accompaniment stage exactly as the paper's setup does (inputs: melody + bridge piano
rolls; structure enters only through the positional encoding), on 16-bar windows of the POP909 train split,
then scores it on the val split at 16 and 64 bars with the annotated chords (CS, SSMD, GS, NDD). The
binarization threshold/gap of each model is tuned on val at 16 bars (cell F1), as the paper tunes its grid.

    python benchmarks/paper_grid.py run --pe ropepool --context bin --seed 0      # one cell
    python benchmarks/paper_grid.py all --jobs 2                                  # every cell, 2 at a time
    python benchmarks/paper_grid.py table                                         # docs/results.md table

Scale (state it with the results): see SCALE below; results land in runs/grid/<cell>/result.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PES = ("rope_c", "fstripe1", "ropepool")
CONTEXTS = ("time", "rep", "key", "bin")
SCALE = dict(d_model=64, n_heads=4, n_layers=2, d_ff=128, batch_size=8, epochs=1, max_steps=1000, lr=1e-3,
             warmup_steps=100, feature_map="favor",
             bars=16, hop_bars=4, inputs=("melody", "bridge"))
PAPER = {  # OAS Table III (test split, 5 seeds): CS, SSMD, GS, NDD at 16 bars, then at 64 bars
    ("time", "rope_c"): (4.5, 14.65, 10.42, 93.82, 9.1, 13.79, 26.78, 91.26),
    ("time", "fstripe1"): (6.01, 14.64, 11.9, 93.2, 6.68, 13.79, 20.67, 91.4),
    ("time", "ropepool"): (2.49, 14.66, 7.79, 94.28, 7.23, 13.79, 22.13, 91.18),
    ("rep", "rope_c"): (4.59, 14.59, 9.76, 92.84, 9.46, 13.62, 27.27, 88.35),
    ("rep", "fstripe1"): (17.71, 14.37, 24.82, 86.81, 13.85, 13.59, 37.66, 86.47),
    ("rep", "ropepool"): (14.23, 14.47, 20.87, 88.81, 11.67, 13.7, 34.11, 88.04),
    ("key", "rope_c"): (12.03, 14.49, 18.57, 89.87, 15.84, 13.62, 42.04, 86.68),
    ("key", "fstripe1"): (19.73, 14.1, 24.08, 81.41, 23.6, 13.2, 60.87, 77.47),
    ("key", "ropepool"): (21.05, 14.18, 26.05, 82.46, 23.11, 13.28, 59.74, 78.69),
    ("bin", "rope_c"): (22.14, 13.98, 26.45, 79.25, 26.27, 13.13, 66.81, 75.02),
    ("bin", "fstripe1"): (24.91, 13.73, 28.19, 77.15, 28.3, 12.95, 71.35, 73.97),
    ("bin", "ropepool"): (25.83, 13.74, 29.11, 76.73, 28.6, 12.99, 72.56, 73.77),
}
NAMES = {"rope_c": "RoPE(C)", "fstripe1": "F-StrIPE₁", "ropepool": "RoPEPool"}


class _AccompanimentOnly:
    """The part of ``Harmonizer`` that ``evaluate_accompaniment`` needs, for a single model."""

    def __init__(self, folder: Path):
        from harmonize.hub import read_meta
        from harmonize.model.checkpoint import load_model
        from harmonize.pipeline import Harmonizer, LoadedStage

        self.stage = LoadedStage(load_model(folder).eval(), read_meta(folder))
        self._h = Harmonizer.__new__(Harmonizer)
        self._h.accompaniment, self._h.device = self.stage, __import__("torch").device("cpu")

    def accompaniment_logits(self, enc, lo, hi):
        return self._h.accompaniment_logits(enc, lo, hi)


def run_cell(pe: str, context: str, seed: int, data: str, max_songs: int, val_songs: int, out_root: Path) -> dict:
    import torch

    from harmonize.data.pop909 import load_split
    from harmonize.evaluate import evaluate_accompaniment, tune_threshold
    from harmonize.train import TrainConfig, train

    torch.set_num_threads(1)
    run = out_root / f"{pe}-{context}-s{seed}"
    if (run / "result.json").exists():
        return json.loads((run / "result.json").read_text())
    cfg = TrainConfig(data=data, out=str(run), stage="accompaniment", pe=pe, context=context, seed=seed,
                      max_songs=max_songs, val_max_songs=val_songs, checkpoint_every=500, threads=1,
                      device="cpu", **SCALE)
    started = time.perf_counter()
    resume = (run / "train_config.json").exists()
    trained = train(cfg, resume=resume, progress=False)
    train_s = time.perf_counter() - started
    model = _AccompanimentOnly(run / "final")
    val = load_split(Path(data), "val", limit=val_songs or None)
    threshold, gap, _ = tune_threshold(val, model, 16)
    result = {"pe": pe, "context": context, "seed": seed, "steps": trained.steps, "train_s": round(train_s, 1),
              "val_loss": trained.history[-1]["val_loss"], "threshold": threshold, "gap": gap}
    for bars in (16, 64):
        summary, _, n = evaluate_accompaniment(val, model, bars, threshold, gap, stage1=False)
        result[f"bars{bars}"] = summary["oracle chords"]
        result[f"windows{bars}"] = n
    (run / "result.json").write_text(json.dumps(result, indent=2))
    return result


def table(out_root: Path, tracks: str = "piano") -> str:
    """Markdown grid beside the paper's Table III; ``tracks``: "piano" (the generated track alone) or "all"
    (melody and bridge, which the model is given, plus the generated piano)."""
    import numpy as np

    prefix = "piano_" if tracks == "piano" else ""

    rows = ["| Ctx | PE | seeds | val BCE | CS | SSMD | GS | NDD | CS64 | SSMD64 | GS64 | NDD64 |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for context, pe in itertools.product(CONTEXTS, PES):
        results = [json.loads(p.read_text()) for p in sorted(out_root.glob(f"{pe}-{context}-s*/result.json"))]
        ours = []
        for bars in (16, 64):
            for m in ("CS", "SSMD", "GS", "NDD"):
                vals = [r[f"bars{bars}"][prefix + m] for r in results]
                ours.append(f"{np.mean(vals):.2f}±{np.std(vals):.2f}" if vals else "–")
        paper = PAPER[(context, pe)]
        losses = [r["val_loss"] for r in results]
        loss = f"{np.mean(losses):.4f}±{np.std(losses):.4f}" if losses else "–"
        rows.append(f"| {context.upper()} | {NAMES[pe]} (ours) | {len(results)} | {loss} | " + " | ".join(ours) + " |")
        rows.append(f"| {context.upper()} | {NAMES[pe]} (paper) | 5 | – | " + " | ".join(f"{v:g}" for v in paper)
                    + " |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("run", "all", "table"))
    parser.add_argument("--pe", choices=PES)
    parser.add_argument("--context", choices=CONTEXTS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, default=1, help="with 'all': seeds 0..N-1")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "pop909"))
    parser.add_argument("--max-songs", type=int, default=0, help="training songs (0: the whole train split)")
    parser.add_argument("--val-songs", type=int, default=0, help="val songs (0: all)")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "grid")
    parser.add_argument("--tracks", choices=("piano", "all"), default="piano", help="which tracks the table scores")
    args = parser.parse_args()
    if args.what == "run":
        print(json.dumps(run_cell(args.pe, args.context, args.seed, args.data, args.max_songs, args.val_songs,
                                  args.out), indent=2))
    elif args.what == "all":
        cells = [(pe, c, s) for s in range(args.seeds) for c in CONTEXTS for pe in PES]
        running: list[subprocess.Popen] = []
        for pe, c, s in cells:
            while len(running) >= args.jobs:
                running = [p for p in running if p.poll() is None]
                time.sleep(2)
            cmd = [sys.executable, __file__, "run", "--pe", pe, "--context", c, "--seed", str(s), "--data",
                   args.data, "--max-songs", str(args.max_songs), "--val-songs", str(args.val_songs),
                   "--out", str(args.out)]
            log = (args.out / f"{pe}-{c}-s{s}.log")
            args.out.mkdir(parents=True, exist_ok=True)
            running.append(subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT))
        for p in running:
            p.wait()
        print(table(args.out, args.tracks))
    else:
        print(table(args.out, args.tracks))


if __name__ == "__main__":
    main()
