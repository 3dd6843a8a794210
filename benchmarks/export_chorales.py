"""Write the Bach chorales that no benchmark tests on as a training folder for `stripe train --extra-data`.

Each 4-part chorale of music21's corpus outside the held-out third (``ood_chords.held_out``, the chorales
`python -m benchmarks.ood_chords` scores) becomes ``NAME.mid`` (the soprano alone, as a notation program
exports it, an upbeat in a bar of its own) and ``NAME.chords.txt`` (the four voices' chord per beat, root +
major/minor as ``ood_chords`` reads it; a beat without a clear triad keeps the chord before it), plus a
``split.json`` (10 % val, seeded). The format is the one of "Train on your own music" in the README.

    python -m benchmarks.export_chorales --out data/chorales
    stripe train --stage chord-beat --data ../shared/pop909 --cl ../shared/pop909-cl --extra-data data/chorales ...
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from benchmarks.ood_chords import Piece, chorale_piece, held_out, parse, seeded_order, write_melody_midi

VAL_SHARE = 0.1


def chord_lines(piece: Piece, bpm: float) -> list[str]:
    """``TIME SYMBOL`` lines (seconds in the written file), one per chord change; unknown beats keep the
    chord before them (the first known chord covers the beats before it)."""
    labels = [b.chord for b in piece.beats]
    known = [c for c in labels if c is not None]
    if not known:
        return []
    current = known[0]
    lines, last = [], None
    for beat, label in zip(piece.beats, labels, strict=True):
        current = label if label is not None else current
        if current != last:
            lines.append(f"{beat.start * 60.0 / bpm:.4f} {current.symbol}")
            last = current
    return lines


def with_pickup_bar(piece: Piece) -> Piece:
    """The piece with its upbeat in a bar of its own (a time signature of the upbeat's length at 0, the
    notated meter after it), so the file's bar lines fall where the score's do."""
    if piece.pickup <= 0 or abs(piece.pickup - round(piece.pickup)) > 1e-9:
        return piece  # no upbeat, or one that is not whole quarters: MIDI meters cannot say it simply
    first = piece.meters[0]
    meters = [(0.0, int(round(piece.pickup)), 4), (piece.pickup, first[1], first[2])]
    meters += [m for m in piece.meters if m[0] > piece.pickup + 1e-9]
    return replace(piece, meters=meters)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.export_chorales", description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="a new (or empty) folder")
    ap.add_argument("--bpm", type=float, default=100.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.out.exists() and any(args.out.iterdir()):
        sys.exit(f"error: {args.out}: folder exists and is not empty")
    from music21 import corpus

    args.out.mkdir(parents=True, exist_ok=True)
    paths = [p for p in sorted(corpus.getComposer("bach"), key=str) if not held_out(Path(p).name)]
    written, skipped = [], 0
    for path in paths:
        try:
            piece = chorale_piece(parse(path), Path(path).name)
        except Exception:  # music21 raises many types on odd files; such a chorale is left out
            piece = None
        lines = chord_lines(piece, args.bpm) if piece is not None else []
        if not lines or not piece.notes:
            skipped += 1
            continue
        stem = Path(path).name.rsplit(".", 1)[0]
        write_melody_midi(with_pickup_bar(piece), args.out / f"{stem}.mid", args.bpm)
        (args.out / f"{stem}.chords.txt").write_text("\n".join(lines) + "\n")
        written.append(f"{stem}.mid")
    order = seeded_order(written, args.seed)
    n_val = max(1, round(VAL_SHARE * len(order)))
    split = {"train": sorted(order[n_val:]), "val": sorted(order[:n_val])}
    (args.out / "split.json").write_text(json.dumps(split, indent=1) + "\n")
    print(f"{len(written)} chorales written to {args.out} ({len(split['train'])} train, {len(split['val'])} val; "
          f"{skipped} left out: not 4 parts or no chords); the held-out third is not among them")


if __name__ == "__main__":
    main()
