"""``benchmarks/ood_chords.py``: reference chords from a chorale's voices and from a lead sheet's chord
symbols, and the scoring through the ``stripe harmonize`` reading path, on tiny hand-made pieces."""

import dataclasses
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # benchmarks/ is not an installed package
    sys.path.insert(0, str(ROOT))

from benchmarks import ood_chords as ood  # noqa: E402
from harmonize.chords import NO_CHORD, Chord  # noqa: E402
from harmonize.song import ChordSpan, Key  # noqa: E402

C, F, G = Chord(0, "maj"), Chord(5, "maj"), Chord(7, "maj")

# I IV V | I in C major, 3/4, one chord a beat, then a dotted-half tonic. The soprano's last 16th of beat 3
# anticipates the C (G B C over G: no triad), so beat 3 is G by majority, not by its onset alone.
CHORALE = {
    "soprano": [("E5", 1), ("F5", 1), ("D5", 0.75), ("C5", 0.25), ("C5", 3)],
    "alto": [("C5", 1), ("C5", 1), ("B4", 1), ("G4", 3)],
    "tenor": [("G4", 1), ("A4", 1), ("G4", 1), ("E4", 3)],
    "bass": [("C3", 1), ("F3", 1), ("G3", 1), ("C3", 3)],
}

# a 3/4 waltz with a one-beat pickup and a chord change inside bar 2 (D7 on its third beat)
LEAD_SHEET = """X:1
T:Tiny waltz
M:3/4
L:1/4
K:G
D|"G"G B d|"C"c e "D7"d|"G"B2 A|"Em"G3|"C"E G c|"G"B2 d|"D7"A B c|"G"G3|
"""


def tiny_chorale():
    from music21 import meter, note, stream

    score = stream.Score()
    for voice in CHORALE.values():
        part = stream.Part()
        part.append(meter.TimeSignature("3/4"))
        for pitch, ql in voice:
            part.append(note.Note(pitch, quarterLength=ql))
        score.insert(0, part.makeMeasures())
    return score


def tiny_lead_sheet(text: str = LEAD_SHEET):
    from music21 import converter

    return converter.parse(text, format="abc")


def test_chorale_reference_is_one_triad_per_beat():
    piece = ood.chorale_piece(tiny_chorale(), "tiny")
    assert [b.chord for b in piece.beats] == [C, F, G, C, C, C]
    assert [(b.start, b.end) for b in piece.beats][:3] == [(0.0, 1.0), (1.0, 2.0), (2.0, 3.0)]
    assert piece.meter == "3/4" and piece.beats_per_bar == 3 and piece.bars == 2 and piece.pickup == 0
    assert piece.key == Key(0, "major")  # music21's analysis of the four voices
    assert [n[2] for n in piece.notes] == [76, 77, 74, 72, 72]  # the soprano, ties merged


def test_chordified_sonorities_reduce_to_root_and_major_minor():
    from music21 import chord

    assert ood.triad_label(chord.Chord(["B3", "D4", "F4"])) == Chord(11, "min")  # diminished: minor family
    assert ood.triad_label(chord.Chord(["G3", "B3", "D4", "F4"])) == G  # a seventh chord: its triad
    assert ood.triad_label(chord.Chord(["C4", "E4", "C5"])) is None  # 2 pitch classes
    assert ood.triad_label(chord.Chord(["C4", "D4", "E4"])) is None  # a passing cluster
    assert ood.triad_label(chord.Chord(["C4", "E4", "G#4"])) is None  # augmented: skipped


def test_lead_sheet_reference_is_the_symbol_in_force_per_beat():
    piece = ood.leadsheet_piece(tiny_lead_sheet(), "waltz")
    assert piece is not None and piece.meter == "3/4" and piece.pickup == 1.0 and piece.bars == 8
    d, em = Chord(2, "maj"), Chord(4, "min")
    # the pickup beat comes before the first symbol: unknown
    assert [b.chord for b in piece.beats][:13] == [None, G, G, G, C, C, d, G, G, G, em, em, em]
    assert piece.key == Key(7, "major")  # the K: field
    short = LEAD_SHEET.replace('|"C"E G c|"G"B2 d|"D7"A B c|"G"G3|', "|")
    assert ood.leadsheet_piece(tiny_lead_sheet(short), "short") is None  # under 8 bars


def test_abc_listing_reads_numbers_meters_and_chord_symbols(tmp_path):
    path = tmp_path / "book.abc"
    path.write_text('X:3\nM:C|\nK:D\n"^Segno"ABc|\n\nX:7\nM:6/8\nK:G\n"G"GAB "D7"ABc|\n')
    tunes = ood.abc_tunes(path)
    assert [(t.number, t.meter, t.chords) for t in tunes] == [(3, "2/2", False), (7, "6/8", True)]
    assert ood.meter_group("2/2") == "other" and ood.meter_group("6/8") == "6/8"
    assert ood.seeded_order([3, 1, 2], 5) == ood.seeded_order([2, 3, 1], 5)  # fixed whatever the listing order


def reference_system(piece):
    """A system that answers the reference chords (on the file's 16th grid: one step = a quarter / 4)."""
    spans = [ChordSpan(round(b.start * 4), round(b.end * 4), b.chord or NO_CHORD) for b in piece.beats]
    return lambda song, key: spans


def shifted_system(piece, semitones: int = 2):
    spans = reference_system(piece)(None, None)
    return lambda song, key: [ChordSpan(s.start, s.end, s.chord.transposed(semitones)) for s in spans[: len(spans) // 2]] \
        + spans[len(spans) // 2:]


@pytest.mark.parametrize("make", [tiny_chorale, tiny_lead_sheet])
def test_scoring_through_the_harmonize_reading_path(make, tmp_path):
    score = make()
    piece = ood.chorale_piece(score, "tiny") if make is tiny_chorale else ood.leadsheet_piece(score, "waltz")
    systems = {"right": reference_system(piece), "wrong": shifted_system(piece)}
    row = ood.evaluate_piece(piece, systems, bpm=90, workdir=tmp_path)
    assert row["beats"] == sum(b.chord is not None for b in piece.beats) > 0
    assert row["right"] == {"root": row["beats"], "majmin": row["beats"]}  # accuracy 1.0
    assert row["wrong"]["majmin"] < row["beats"]
    assert row["changes"]["right"] == row["changes"]["reference"]
    assert row["grid"] == "file"  # a quantized file keeps its own grid
    summary = ood.summarize([{**row, "stripe": row["right"], "hmm": row["wrong"],
                              "fit": {"stripe": row["fit"]["right"], "hmm": row["fit"]["wrong"]}}])
    assert summary["stripe"]["majmin"] == 1.0 and summary["diff_majmin"] > 0


def test_reference_key_goes_to_every_system(tmp_path):
    piece = ood.chorale_piece(tiny_chorale(), "tiny")
    seen = []
    systems = {"a": lambda song, key: seen.append(key) or reference_system(piece)(song, key)}
    odd_key = Key(6, "minor")  # F# minor: no estimate of a C-major chorale gives it
    piece = dataclasses.replace(piece, key=odd_key)
    row = ood.evaluate_piece(piece, systems, workdir=tmp_path)
    assert seen[-1] != odd_key and row["key_given"] == row["key_est"]  # the default: the melody's key
    row = ood.evaluate_piece(piece, systems, workdir=tmp_path, key="reference")
    assert seen[-1] == odd_key and row["key_given"] == odd_key.name and row["key_ok"] is False


def test_both_real_systems_run_on_a_tiny_piece(model_dir, tmp_path):
    from harmonize.pipeline import Harmonizer

    piece = ood.chorale_piece(tiny_chorale(), "tiny")
    systems = {"stripe": ood.stripe_system(Harmonizer.load(str(model_dir))), "hmm": ood.hmm_system}
    row = ood.evaluate_piece(piece, systems, workdir=tmp_path)
    for name in systems:
        assert 0 <= row[name]["majmin"] <= row[name]["root"] <= row["beats"] == 6
    assert row["key_est"] and row["key_ok"] in (True, False)
