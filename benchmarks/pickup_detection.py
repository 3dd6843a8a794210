"""How well ``stripe harmonize`` finds pickups: folk tunes from music21's corpus (Essen Folksong Collection),
each written as many MIDI files are, with the upbeat at tick 0 under the tune's time signature.

The truth is the tune's own notation (the first bar's missing part, music21's ``paddingLeft``). A tune counts
as "whole-beat pickup" when its upbeat is a whole number of the meter's beats, "part-of-a-beat" otherwise (an
eighth in 6/8 or 2/4; detection tries eighths too, with a stricter margin). Prints counts: correct, missed,
wrong length, false alarms on tunes without a pickup.

    python benchmarks/pickup_detection.py                 # essenFolksong/altdeu10 (default)
    python benchmarks/pickup_detection.py --opus essenFolksong/ballad10 --max-tunes 80
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path


def tune_to_midi(score, out: Path) -> tuple[float, float] | None:
    """Write the tune with its upbeat at tick 0; returns (bar length, pickup length) in quarters."""
    import mido

    flat = score.flatten()
    sigs = flat.getElementsByClass("TimeSignature")
    measures = score.parts[0].getElementsByClass("Measure") if score.parts else score.getElementsByClass("Measure")
    if not sigs or len(measures) < 4:
        return None
    ts = sigs[0]
    bar = float(ts.barDuration.quarterLength)
    pad = float(measures[0].paddingLeft)
    if pad >= bar:  # an encoding whose first bar is padded by more than a bar: no truth to compare with
        return None
    pickup = bar - pad if pad > 0 else 0.0
    events = []
    for n in flat.notes:
        if not hasattr(n, "pitch"):
            continue
        events.append((round(float(n.offset) * 480), 1, mido.Message("note_on", note=n.pitch.midi, velocity=80)))
        events.append((round(float(n.offset + n.quarterLength) * 480), 0,
                       mido.Message("note_off", note=n.pitch.midi, velocity=0)))
    track = mido.MidiTrack([mido.MetaMessage("time_signature", numerator=ts.numerator,
                                             denominator=ts.denominator, time=0)])
    now = 0
    for t, _, msg in sorted(events, key=lambda e: (e[0], e[1])):
        track.append(msg.copy(time=t - now))
        now = t
    mid = mido.MidiFile(ticks_per_beat=480)
    mid.tracks.append(track)
    mid.save(str(out))
    return bar, pickup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--opus", default="essenFolksong/altdeu10")
    parser.add_argument("--max-tunes", type=int, default=0)
    parser.add_argument("--margin", type=float, default=None, help="detect_pickup's margin (default: its own)")
    parser.add_argument("--sub-beat-margin", type=float, default=None, help="its margin for eighth-note upbeats")
    args = parser.parse_args()
    from music21 import corpus

    from harmonize.io.midi import read_song
    from harmonize.pickup import beat_steps, detect_pickup

    opus = corpus.parse(args.opus)
    scores = list(opus.scores)[: args.max_tunes or None]
    counts = {f"{kind} pickup: {what}": 0 for kind in ("whole-beat", "part-of-a-beat")
              for what in ("correct", "missed", "wrong length")}
    counts.update({"no pickup: correct": 0, "no pickup: false alarm": 0})
    with tempfile.TemporaryDirectory() as tmp:
        for i, score in enumerate(scores):
            path = Path(tmp) / f"{i}.mid"
            try:
                shape = tune_to_midi(score, path)
                song = read_song(path, grid="file") if shape else None
            except Exception:  # noqa: BLE001 - a tune music21 or the reader cannot handle is skipped
                continue
            if song is None:
                continue
            _, pickup_q = shape
            knobs = {k: v for k, v in (("margin", args.margin), ("sub_beat_margin", args.sub_beat_margin)) if v is not None}
            detected_q = detect_pickup(song, **knobs) / 4
            beat_q = beat_steps(song.grid) / 4
            if pickup_q == 0:
                counts["no pickup: correct" if detected_q == 0 else "no pickup: false alarm"] += 1
            else:
                kind = "whole-beat" if abs(pickup_q / beat_q - round(pickup_q / beat_q)) < 1e-6 else "part-of-a-beat"
                what = ("missed" if detected_q == 0 else "correct" if abs(detected_q - pickup_q) < 1e-6
                        else "wrong length")
                counts[f"{kind} pickup: {what}"] += 1
    print(f"{args.opus}: {sum(counts.values())} tunes")
    for k, v in counts.items():
        print(f"  {k:32s} {v}")


if __name__ == "__main__":
    main()
