"""Make the example melodies from POP909 val songs (MIT licence, see examples/LICENSE-POP909).

Each example is the song's MELODY track alone, quantized to 16ths on the song's annotated beat grid and
written with the song's mean tempo and a 4/4 (or 3/4) time signature, so that bar lines fall where POP909's
downbeats are. Then each is harmonized with the bundled model.

    python examples/make_examples.py --data ../shared/pop909 --songs 41 50 57
    python examples/make_examples.py --harmonize-only          # re-harmonize the committed melodies
"""

from __future__ import annotations

import argparse
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESOLUTION = 480


def write_melody(song, out: Path) -> None:
    import mido
    import numpy as np

    grid = song.grid
    beat_s = float(np.median(np.diff(grid.step_times[:: 4])))
    bar_len = int(np.median(np.diff(grid.bar_starts))) if len(grid.bar_starts) > 2 else 16
    lead_in = (-grid.bar_starts[1]) % bar_len if len(grid.bar_starts) > 1 else 0  # pickup -> a full bar
    tick = RESOLUTION // 4
    events = []
    for n in song.melody:
        events.append(((n.start + lead_in) * tick, 1, mido.Message("note_on", note=n.pitch, velocity=n.velocity)))
        events.append(((n.end + lead_in) * tick, 0, mido.Message("note_off", note=n.pitch, velocity=0)))
    track = mido.MidiTrack([
        mido.MetaMessage("track_name", name="Melody", time=0),
        mido.MetaMessage("set_tempo", tempo=round(beat_s * 1e6), time=0),
        mido.MetaMessage("time_signature", numerator=bar_len // 4, denominator=4, time=0),
        mido.Message("program_change", program=0, time=0),
    ])
    now = 0
    for t, _, msg in sorted(events, key=lambda e: (e[0], e[1])):
        track.append(msg.copy(time=t - now))
        now = t
    mid = mido.MidiFile(ticks_per_beat=RESOLUTION)
    mid.tracks.append(track)
    mid.save(str(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(HERE.parents[1] / "shared" / "pop909"))
    parser.add_argument("--songs", type=int, nargs="+", default=[41, 50, 57])
    parser.add_argument("--harmonize-only", action="store_true")
    parser.add_argument("--plot", default=str(HERE.parent / "docs" / "img" / "example_pianoroll.png"))
    args = parser.parse_args()
    from harmonize.commands import run_harmonize

    melodies = sorted(HERE.glob("pop909_*_melody.mid"))
    if not args.harmonize_only:
        from harmonize.data.pop909 import load_song

        melodies = []
        for number in args.songs:
            song = load_song(Path(args.data) / f"{number:03d}")
            out = HERE / f"pop909_{number:03d}_melody.mid"
            write_melody(song, out)
            melodies.append(out)
    for i, melody in enumerate(melodies):
        out = melody.with_name(melody.name.replace("_melody", "_harmonized"))
        summary = run_harmonize(melody, out, force=True)[0]
        print(f"{out.name}: {summary['key']}, {summary['n_chords']} chords, "
              f"{summary['n_accompaniment_notes']} accompaniment notes")
        if i == 0 and args.plot:
            plot(out, Path(args.plot))


def plot(midi: Path, png: Path) -> None:
    """Pianoroll of the first 16 bars: melody, chords and accompaniment in three colours."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(str(midi))
    downbeats = pm.get_downbeats()
    end = downbeats[16] if len(downbeats) > 16 else pm.get_end_time()
    fig, ax = plt.subplots(figsize=(14, 5))
    colours = {"Melody": "tab:red", "Chords": "tab:green", "Accompaniment": "tab:blue"}
    for inst in pm.instruments:
        c = colours.get(inst.name, "0.5")
        bars = [(n.start, n.end - n.start) for n in inst.notes if n.start < end]
        for n, (s, w) in zip([n for n in inst.notes if n.start < end], bars, strict=True):
            ax.broken_barh([(s, w)], (n.pitch - 0.4, 0.8), color=c)
        ax.plot([], [], color=c, lw=6, label=inst.name)
    for d in downbeats:
        if d < end:
            ax.axvline(d, color="0.85", lw=0.8, zorder=0)
    ax.set_xlim(0, end)
    ax.set_xlabel("seconds")
    ax.set_ylabel("MIDI pitch")
    ax.set_title(f"{midi.name}: first 16 bars")
    ax.legend(loc="upper right")
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    main()
