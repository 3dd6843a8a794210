"""Score every epoch of a chord-stage run END TO END on POP909 val, as `stripe harmonize` decodes it.

    stripe train ... --stage chord-beat --keep-epochs --out runs/x
    python -m benchmarks.pick_epoch --run runs/x [--partner models/pop909-beat/chord] [--decoding models/pop909-beat]

A run's ``best/`` is the epoch with the best per-beat validation accuracy (annotated beats, exact class).
That has picked the wrong epoch before: see docs/results.md §10–12. Here each ``epochs/NN/`` (and ``best/``)
becomes the chord stage of a harmonizer folder. The folder takes ``--decoding``'s ``harmonizer.json``,
``transitions.json`` and accompaniment, and ``--partner`` as ``chord-2/`` when given: a pair. Each is then
scored as ``benchmarks/decoder_sweep.py`` scores the bundled settings: melody-only files, root + maj/min per
annotated beat against POP909's labels, CHE, chord changes a bar. Val only: choosing on it is still choosing
on val.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from benchmarks.decoder_sweep import prepare, score


def harmonizer_folder(chord: Path, decoding: Path, out: Path, partner: Path | None = None) -> Path:
    """``out/``: ``chord`` as its chord stage (``partner`` as ``chord-2/``), ``decoding``'s settings, learnt
    transitions and accompaniment stage."""
    out.mkdir(parents=True)
    for name in ("harmonizer.json", "transitions.json"):
        if (decoding / name).is_file():
            shutil.copyfile(decoding / name, out / name)
    stages = {"chord": chord, "chord-2": partner, "accompaniment": decoding / "accompaniment"}
    for name, src in stages.items():
        if src is not None and src.is_dir():
            shutil.copytree(src, out / name)
    return out


def epoch_folders(run: Path) -> list[tuple[str, Path]]:
    """(label, folder) of each ``epochs/NN/`` of ``run`` in order, then ``best/``."""
    out = [(f"epoch {int(p.name)}", p) for p in sorted((run / "epochs").glob("[0-9][0-9]")) if p.is_dir()]
    if (run / "best").is_dir():
        out.append(("best/", run / "best"))
    return out


def main(argv=None) -> None:
    from harmonize.errors import StripeError

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", type=Path, required=True, help="a run folder of stripe train --keep-epochs")
    ap.add_argument("--partner", type=Path, default=None, help="a chord-stage folder paired with each epoch")
    ap.add_argument("--decoding", type=Path, default=None,
                    help="harmonizer folder whose decoding settings to use (default: the bundled model)")
    ap.add_argument("--data", default="../shared/pop909")
    ap.add_argument("--variant", choices=("grid", "raw"), default="grid")
    ap.add_argument("--songs", type=int, default=0, help="first N val songs (0: all)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)

    import torch

    from harmonize.data.pop909 import split_song_ids
    from harmonize.hub import bundled_root
    from harmonize.model.checkpoint import read_config
    from harmonize.pipeline import Harmonizer

    folders = epoch_folders(args.run)
    if not folders:
        raise StripeError("no epochs/NN/ or best/ here (train with --keep-epochs)", args.run)
    decoding = args.decoding or bundled_root() / "pop909-beat"
    if not (decoding / "harmonizer.json").is_file():
        raise StripeError("no harmonizer.json here", decoding)
    if args.partner is not None and not (args.partner / "config.json").is_file():
        raise StripeError("not a chord-stage folder (no config.json)", args.partner)
    torch.set_num_threads(args.threads)
    root = Path(args.data)
    ids = [i for i in split_song_ids("val", root) if (root / f"{i:03d}").is_dir()]
    ids = ids[: args.songs] if args.songs else ids
    if not ids:
        raise StripeError("no val songs under this folder", root)
    print(f"{len(ids)} val songs ({args.variant} files); decoding of {decoding}"
          + (f"; each epoch paired with {args.partner}" if args.partner else ""))
    print("| chord stage | per-beat val accuracy (loss) | end to end, root + maj/min | CHE | changes a bar |")
    print("|---|---|---|---|---|")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, folder in folders:
            t0 = time.perf_counter()
            h_dir = harmonizer_folder(folder, decoding, Path(tmp) / f"h{len(rows)}", args.partner)
            harmonizer = Harmonizer.load(str(h_dir))
            cases = [prepare(root / f"{i:03d}", harmonizer, args.variant, Path(tmp), None) for i in ids]
            result = score(cases, harmonizer, harmonizer.decoding)
            val = read_config(folder)[1].get("val", {})  # the checked reader the harmonizer loads with
            per_beat = (f"{val['val_beat_accuracy']:.4f} ({val.get('val_loss', float('nan')):.3f})"
                        if "val_beat_accuracy" in val else "")
            rows.append((label, result))
            print(f"| {label} | {per_beat} | {result['acc_pop909']:.3f} | {result['CHE']:.3f} | "
                  f"{result['changes_a_bar']:.2f} |  ({time.perf_counter() - t0:.0f} s)", flush=True)
    best = max(rows, key=lambda r: r[1]["acc_pop909"])
    print(f"most accurate end to end: {best[0]} ({best[1]['acc_pop909']:.3f}, CHE {best[1]['CHE']:.3f})")


if __name__ == "__main__":
    from harmonize.errors import run_script

    run_script(main)
