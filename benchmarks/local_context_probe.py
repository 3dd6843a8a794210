"""How much of a chord does the melody right around its beat say? A probe of the per-beat chord stage.

The per-beat chord stage's tokens (``beat_tokens.encode_beats``, key frame from ``estimate_key``) of POP909's
train and val splits, on the annotated beats. A small MLP that sees only the ``2 * --window + 1`` tokens
around each beat (no attention, no position) is trained on train for ``--epochs`` and scored per val beat by
its argmax, next to the argmax of chord-stage models (``--model``, repeatable) on the same val beats (64-bar
windows, as ``Harmonizer.chord_beat_log_probs`` reads a song). Accuracies: exact class (109) and root +
major/minor, against POP909's labels (``--labels cl``: POP909-CL's). This is an oracle-grid probe of the
posteriors, not a user-facing figure (no decoding, annotated beats).

It is the measurement behind ``ModelConfig.local_kernel``: the bundled transformer of November 2026 (linear
attention, one linear projection per token) scored *below* this probe (docs/results.md §10).

    python -m benchmarks.local_context_probe --model models/pop909-beat/chord
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def split_tokens(root: Path, split: str, labels: str, cl_root: Path,
                 feature_set: str = "base") -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per song: the chord stage's tokens ``[B, N_FEATURES]`` and key-relative chord classes ``[B]``, read by
    the trainer's own loader (``train.load_beat_songs``)."""
    from harmonize.train import TrainConfig, load_beat_songs

    cfg = TrainConfig(data=str(root), stage="chord-beat", cl=str(cl_root) if labels == "cl" else None,
                      beat_features=feature_set)
    songs = load_beat_songs(cfg, split)
    return [s.features for s in songs], [s.chord for s in songs]


def family_of_class():
    """Class index -> root + maj/min label index (0 = N), as ``metrics.chord_accuracy(level="majmin")``."""
    from harmonize.chords import N_CLASSES, chord_from_class
    from harmonize.metrics import _family

    return np.array([0] + [chord_from_class(c).root * 2 + (_family(chord_from_class(c)) == "min") + 1
                           for c in range(1, N_CLASSES)])


def windows(tokens: np.ndarray, w: int) -> np.ndarray:
    """Each token with its ``w`` neighbours on either side (zeros past the ends), concatenated."""
    pad = np.zeros((w, tokens.shape[1]), np.float32)
    padded = np.concatenate([pad, tokens, pad])
    return np.concatenate([padded[i:i + len(tokens)] for i in range(2 * w + 1)], axis=1)


def scores(pred: np.ndarray, target: np.ndarray, fam: np.ndarray) -> dict:
    return {"class": float((pred == target).mean()), "root+maj/min": float((fam[pred] == fam[target]).mean())}


def probe(train, val, w: int, epochs: int, seed: int) -> np.ndarray:
    """The MLP's argmax per val beat (all val songs concatenated)."""
    import torch

    from harmonize.chords import N_CLASSES

    torch.manual_seed(seed)
    xt = torch.from_numpy(np.concatenate([windows(x, w) for x in train[0]]))
    yt = torch.from_numpy(np.concatenate(train[1]))
    xv = torch.from_numpy(np.concatenate([windows(x, w) for x in val[0]]))
    net = torch.nn.Sequential(torch.nn.Linear(xt.shape[1], 512), torch.nn.GELU(), torch.nn.Dropout(0.3),
                              torch.nn.Linear(512, N_CLASSES))
    opt = torch.optim.AdamW(net.parameters(), 1e-3, weight_decay=0.01)
    for _ in range(epochs):
        net.train()
        order = torch.randperm(len(xt))
        for i in range(0, len(xt), 512):
            idx = order[i:i + 512]
            loss = torch.nn.functional.cross_entropy(net(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        return net(xv).argmax(-1).numpy()


def model_argmax(folder: Path, val_tokens: list[np.ndarray], bars: int = 64) -> np.ndarray:
    """A chord-stage model's argmax per val beat, 64-bar (256-beat) windows."""
    import torch

    from harmonize.chords import N_CLASSES
    from harmonize.model.checkpoint import load_model

    model = load_model(folder)
    n_in = model.config.n_in  # the "line" set appends its blocks to "base": a base model reads the first columns
    if n_in > val_tokens[0].shape[1]:
        raise SystemExit(f"{folder} takes {n_in} features a beat: run with --beat-features line")
    out = []
    with torch.no_grad():
        for x in val_tokens:
            pred = np.zeros(len(x), np.int64)
            for lo in range(0, len(x), bars * 4):
                chunk = torch.from_numpy(x[lo:lo + bars * 4, :n_in])[None]
                pos = torch.arange(chunk.shape[1], dtype=torch.float32)[None, :, None]
                pred[lo:lo + chunk.shape[1]] = model(chunk, pos)[0, :, :N_CLASSES].argmax(-1).numpy()
            out.append(pred)
    return np.concatenate(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/pop909")
    ap.add_argument("--cl", default="../shared/pop909-cl")
    ap.add_argument("--labels", choices=("pop909", "cl"), default="pop909")
    ap.add_argument("--window", type=int, default=4, help="beats on either side the probe sees")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", action="append", default=[], type=Path, help="chord-stage folder(s) to compare")
    ap.add_argument("--beat-features", choices=("base", "line"), default="base",
                    help="the tokens' feature set (beat_tokens.FEATURE_SETS)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    root, cl_root = Path(args.data), Path(args.cl)
    train = split_tokens(root, "train", args.labels, cl_root, args.beat_features)
    val = split_tokens(root, "val", args.labels, cl_root, args.beat_features)
    target = np.concatenate(val[1])
    fam = family_of_class()
    print(f"python -m benchmarks.local_context_probe --labels {args.labels} --window {args.window} "
          f"--epochs {args.epochs} --seed {args.seed} --beat-features {args.beat_features}")
    print(f"{len(train[0])} train / {len(val[0])} val songs, {len(target)} val beats (annotated grid, argmax)")
    print("| predictor | class | root+maj/min |")
    print("|---|---|---|")
    pred = probe(train, val, args.window, args.epochs, args.seed)
    s = scores(pred, target, fam)
    print(f"| MLP over ±{args.window} beats | {s['class']:.3f} | {s['root+maj/min']:.3f} |")
    for folder in args.model:
        s = scores(model_argmax(folder, val[0]), target, fam)
        print(f"| {folder} | {s['class']:.3f} | {s['root+maj/min']:.3f} |")
    print(f"{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    from harmonize.errors import run_script

    run_script(main)
