"""Make the folk-tune example: a tune with a pickup, harmonized, with its lead sheet.

"Zwei Koenigskinder" (traditional German ballad, 3/4 with a one-beat upbeat), from the Essen Folksong
Collection as shipped in music21's corpus (``essenFolksong/altdeu10``, tune 27). The melody is written the
way many MIDI files have it: the upbeat at tick 0 and a 3/4 time signature there, so the file's own bar
lines fall one beat early. ``stripe harmonize`` detects the pickup from the melody's accents (the summary
says ``pickup of 1 beat(s) (detected)``), puts the chords on the true downbeats and writes the lead sheet
with an incomplete bar 0.

    python examples/make_folk_example.py            # writes the three files below, then harmonizes
    # which is: stripe harmonize examples/folk_zwei_koenigskinder_melody.mid \\
    #     -o examples/folk_zwei_koenigskinder_harmonized.mid \\
    #     --musicxml examples/folk_zwei_koenigskinder_lead.musicxml --force
"""

from __future__ import annotations

import argparse
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESOLUTION = 480
OPUS, NUMBER, TITLE = "essenFolksong/altdeu10", 27, "Zwei Koenigskinder"
STEM = "folk_zwei_koenigskinder"


def write_melody(out: Path, bpm: float = 100.0) -> None:
    """The tune's notes at their offsets (upbeat at tick 0), a conductor track named after the tune."""
    import mido
    from music21 import corpus

    opus = corpus.parse(OPUS)
    score = next(s for s in opus.scores if s.metadata.number == str(NUMBER))
    flat = score.flatten()
    ts = flat.getElementsByClass("TimeSignature")[0]
    events = []
    for n in flat.notes:
        start = round(float(n.offset) * RESOLUTION)
        end = round(float(n.offset + n.quarterLength) * RESOLUTION)
        events.append((start, 1, mido.Message("note_on", note=n.pitch.midi, velocity=80)))
        events.append((end, 0, mido.Message("note_off", note=n.pitch.midi, velocity=0)))
    conductor = mido.MidiTrack([
        mido.MetaMessage("track_name", name=TITLE, time=0),
        mido.MetaMessage("set_tempo", tempo=round(60e6 / bpm), time=0),
        mido.MetaMessage("time_signature", numerator=ts.numerator, denominator=ts.denominator, time=0),
    ])
    melody = mido.MidiTrack([mido.MetaMessage("track_name", name="Melody", time=0),
                             mido.Message("program_change", program=73, time=0)])  # flute
    now = 0
    for t, _, msg in sorted(events, key=lambda e: (e[0], e[1])):
        melody.append(msg.copy(time=t - now))
        now = t
    mid = mido.MidiFile(type=1, ticks_per_beat=RESOLUTION)
    mid.tracks.extend([conductor, melody])
    mid.save(str(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--harmonize-only", action="store_true", help="Keep the committed melody.")
    args = parser.parse_args()
    melody = HERE / f"{STEM}_melody.mid"
    if not args.harmonize_only:
        write_melody(melody)
    from harmonize.commands import run_harmonize

    [summary] = run_harmonize(melody, HERE / f"{STEM}_harmonized.mid", musicxml=HERE / f"{STEM}_lead.musicxml",
                              force=True)
    print(f"{summary['output']}: key {summary['key']}, pickup {summary['pickup_beats']:g} beat(s) "
          f"({summary['pickup_source']}), chords {' '.join(summary['chords'])}")


if __name__ == "__main__":
    main()
