import pytest
from hypothesis import given
from hypothesis import strategies as st

from harmonize.chords import (
    N_CLASSES,
    NO_CHORD,
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
