import pytest
from hypothesis import given
from hypothesis import strategies as st

from harmonize.chords import (
    N_CLASSES,
    NO_CHORD,
    QUALITY_INTERVALS,
    Chord,
    chord_from_class,
    chord_from_pitch_classes,
    parse_chord,
    parse_pitch_class,
)
from harmonize.song import Key
from harmonize.structure import key_tokens, renumber_first_appearance


@pytest.mark.parametrize(
    "symbol, root, pcs",
    [
        ("B:maj", 11, (3, 6, 11)),
        ("C#:min7", 1, (1, 4, 8, 11)),
        ("E:maj/3", 4, (4, 8, 11)),
        ("Am", 9, (0, 4, 9)),
        ("G7", 7, (2, 5, 7, 11)),
        ("Cmaj7", 0, (0, 4, 7, 11)),
        ("F#dim", 6, (0, 6, 9)),
        ("Bb:sus4(b7)", 10, (3, 5, 8, 10)),
    ],
)
def test_parse_chord(symbol, root, pcs):
    chord = parse_chord(symbol)
    assert chord.root == root
    assert chord.pitch_classes == pcs


def test_harte_bass_degree_and_no_chord():
    assert parse_chord("C:maj/5").bass == 7
    assert parse_chord("A:min/b3").bass == 0
    assert parse_chord("N") is NO_CHORD and NO_CHORD.chroma == (0,) * 12


@pytest.mark.parametrize("bad", ["H:maj", "C:foo", "xyz", "C:maj/q"])
def test_parse_chord_rejects(bad):
    with pytest.raises(ValueError):
        parse_chord(bad)


def test_pitch_class_spellings():
    assert parse_pitch_class("Eb") == parse_pitch_class("D#") == 3
    assert parse_pitch_class("Cb") == 11


@given(st.integers(0, N_CLASSES - 1))
def test_class_round_trip(index):
    assert chord_from_class(index).class_index == index


@given(st.integers(0, N_CLASSES - 1), st.integers(-24, 24))
def test_transposition_moves_chroma(index, k):
    chord = chord_from_class(index)
    moved = chord.transposed(k)
    assert moved.chroma == tuple(chord.chroma[(pc - k) % 12] for pc in range(12))


def test_chord_from_pitch_classes():
    assert chord_from_pitch_classes({0, 4, 7}).symbol == "C:maj"
    assert chord_from_pitch_classes({9, 0, 4}).symbol == "A:min"
    assert chord_from_pitch_classes({7, 11, 2, 5}).symbol == "G:7"
    assert chord_from_pitch_classes(set()).is_none


def test_key_tokens_are_key_relative():
    e_min_in_d = parse_chord("E:min").class_index
    d_min = parse_chord("D:min").class_index
    assert key_tokens([e_min_in_d], Key(2, "major"))[0] == d_min  # paper: E:min in D major -> D:min in C
    assert key_tokens([d_min], Key(0, "minor"))[0] == d_min + N_CLASSES


def test_renumber_first_appearance():
    assert renumber_first_appearance([7, 7, 3, 9, 3, 7]).tolist() == [0, 0, 1, 2, 1, 0]


# every root with both accidentals, every quality, in Harte and lead-sheet spelling
_ROOT_SPELLINGS = [(f"{letter}{acc}", (base + shift) % 12)
                   for letter, base in (("C", 0), ("D", 2), ("E", 4), ("F", 5), ("G", 7), ("A", 9), ("B", 11))
                   for acc, shift in (("", 0), ("#", 1), ("b", -1))]
_LEADSHEET_OF = {"maj": "", "min": "m", "7": "7", "maj7": "maj7", "min7": "m7", "dim": "dim", "aug": "aug",
                 "sus2": "sus2", "sus4": "sus4", "maj6": "6", "min6": "m6", "hdim7": "m7b5", "dim7": "dim7",
                 "minmaj7": "mmaj7", "sus4(b7)": "7sus4", "9": "9", "maj9": "maj9", "min9": "m9"}


@pytest.mark.parametrize("quality", sorted(QUALITY_INTERVALS))
@pytest.mark.parametrize("root_name,root", _ROOT_SPELLINGS)
def test_every_root_accidental_and_quality(root_name, root, quality):
    harte = parse_chord(f"{root_name}:{quality}")
    lead = parse_chord(f"{root_name}{_LEADSHEET_OF[quality]}")
    assert harte == lead == Chord(root, quality)


@pytest.mark.parametrize("symbol,expected", [
    ("7sus4", "sus4(b7)"), ("add9", "maj"), ("m(add9)", "min"), ("7b9", "7"), ("6", "maj6"), ("m6", "min6"),
    ("9", "9"), ("13", "9"), ("7#9", "7"), ("m11", "min9"), ("o7", "dim7"), ("maj13", "maj9"),
    ("sus", "sus4"), ("-7", "min7"), ("7sus2", "sus2"),
])
def test_musician_qualities_take_the_nearest_class(symbol, expected):
    assert parse_chord(f"F#{symbol}") == Chord(6, expected)
    assert parse_chord(f"Gb{symbol}").quality == expected


@pytest.mark.parametrize("bad", ["Cxyz", "C7q", "Cadd", "C#m7zz"])
def test_unreadable_qualities_are_errors(bad):
    with pytest.raises(ValueError, match="unknown chord quality"):
        parse_chord(bad)
