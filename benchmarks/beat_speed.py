"""How long the beat tracker takes: inferred beats and downbeats for a 200-bar performance-timed song.

    python benchmarks/beat_speed.py [--bars 200] [--repeats 5] [--pop909 ../shared/pop909/001]

Times ``beats.infer_beats`` (onset envelope, tempo, DP beats, downbeats) and, for comparison, the whole
``read_song`` of the same file with ``--grid file`` and ``--grid notes``. The synthetic song is a melody plus
a chord track, played at a drifting tempo with ±20 ms jitter; ``--pop909`` adds a real song folder.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harmonize.beats import infer_beats  # noqa: E402
from harmonize.io.midi import read_song  # noqa: E402


def synthetic(path: Path, bars: int, seed: int = 0) -> Path:
    import mido

    rng = np.random.default_rng(seed)
    n_beats = bars * 4 + 1
    bpm = np.linspace(92.0, 100.0, n_beats)
    beats = 0.31 + np.concatenate([[0.0], np.cumsum(60.0 / bpm[:-1])])
    res, file_bpm = 480, 96.0
    events = []
    roots = (60, 65, 67, 57)
    for b in range(bars):
        root = roots[b % 4]
        for pos, length, step in ((0, 1.5, 0), (1.5, 0.5, 2), (2, 0.5, 4), (2.5, 0.5, 5), (3, 1, 4)):
            t0 = np.interp(b * 4 + pos, np.arange(n_beats), beats) + rng.uniform(-0.02, 0.02)
            t1 = np.interp(b * 4 + pos + length, np.arange(n_beats), beats) - 0.02
            events.append((t0, t1, root + 12 + (0, 2, 4, 5, 7, 9)[step], 0))
        for p in (root - 12, root - 5, root):
            events.append((beats[b * 4] + rng.uniform(-0.02, 0.02), beats[b * 4 + 4] - 0.05, p, 1))
    mid = mido.MidiFile(type=1, ticks_per_beat=res)
    mid.tracks.append(mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=round(60e6 / file_bpm))]))
    for channel, name in ((0, "Melody"), (1, "Chords")):
        abs_events = []
        for t0, t1, p, c in events:
            if c == channel:
                abs_events.append((round(t0 * file_bpm / 60 * res), 1, mido.Message("note_on", note=p, velocity=80,
                                                                                    channel=c)))
                abs_events.append((round(t1 * file_bpm / 60 * res), 0, mido.Message("note_off", note=p, channel=c)))
        track = mido.MidiTrack([mido.MetaMessage("track_name", name=name)])
        now = 0
        for tick, _o, msg in sorted(abs_events, key=lambda e: (e[0], e[1])):
            track.append(msg.copy(time=tick - now))
            now = tick
        mid.tracks.append(track)
    mid.save(str(path))
    return path


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs)


def measure(path: Path, repeats: int) -> dict:
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(str(path))
    notes = [n for i in pm.instruments if not i.is_drum for n in i.notes if n.end > n.start]
    notes.sort(key=lambda n: n.start)
    on = np.array([n.start for n in notes])
    dur = np.array([n.end - n.start for n in notes])
    pitch = np.array([n.pitch for n in notes])
    vel = np.array([n.velocity for n in notes])
    tempo = float(pm.get_tempo_changes()[1][0])
    beats = infer_beats(on, dur, pitch, vel, tempo_bpm=tempo, start=0.0, end=float((on + dur).max()))
    return {
        "file": str(path),
        "notes": len(notes),
        "bars_found": int(beats.downbeats.sum()),
        "tracker_s": round(timed(lambda: infer_beats(on, dur, pitch, vel, tempo_bpm=tempo, start=0.0,
                                                     end=float((on + dur).max())), repeats), 4),
        "read_song_file_grid_s": round(timed(lambda: read_song(path, grid="file"), repeats), 4),
        "read_song_notes_grid_s": round(timed(lambda: read_song(path, grid="notes"), repeats), 4),
    }


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bars", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--pop909", type=Path, default=None, help="a POP909 song folder to time as well")
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        rows.append(measure(synthetic(Path(tmp) / "perf.mid", args.bars), args.repeats))
    if args.pop909 is not None:
        rows.append(measure(args.pop909 / f"{args.pop909.name}.mid", args.repeats))
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
