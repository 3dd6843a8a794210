from pathlib import Path

import numpy as np
import pytest

from harmonize.chords import N_CLASSES, chord_from_class
from harmonize.data import pop909
from harmonize.encode import EncodedSong, encode_song, pianoroll, shift_roll, transpose, transpose_classes
from harmonize.song import Key, Note
from harmonize.structure import key_tokens

MINI = Path(__file__).parent / "fixtures" / "pop909_mini"


@pytest.fixture(scope="module")
def enc() -> EncodedSong:
    return encode_song(pop909.load_song(MINI / "331"))


def test_pianoroll_sustain_and_onsets():
    notes = [Note(1, 4, 60), Note(3, 9, 72), Note(8, 12, 40)]
    roll = pianoroll(notes, 10)
    assert roll.shape == (10, 128) and roll.dtype == np.uint8
    assert roll[1:4, 60].all() and roll[[0, 4], 60].sum() == 0
    assert roll[8:10, 40].all()  # clipped at the end
    on = pianoroll(notes, 10, onsets_only=True)
    assert on.sum() == 3 and on[1, 60] == on[3, 72] == on[8, 40] == 1


def test_encode_shapes_and_labels(enc):
    song = pop909.load_song(MINI / "331")
    T = song.n_steps
    for roll in (enc.melody_roll, enc.bridge_roll, enc.piano_roll):
        assert roll.shape == (T, 128) and roll.dtype == np.uint8
    assert enc.chroma.shape == (T, 12)
    for arr in (enc.chord_class, enc.key_token, enc.bar_position, enc.bar_index, enc.beat_onset):
        assert arr.shape == (T,)
    assert enc.name == "pop909/331" and enc.n_steps == T
    assert list(enc.bar_starts) == song.grid.bar_starts
    assert (enc.bar_position[enc.bar_starts] == 0).all() and enc.bar_position.max() == 15
    assert enc.bar_index[-1] == len(song.grid.bar_starts) - 1
    assert enc.beat_onset.sum() == T // 4 and enc.beat_onset[::4].all()
    # melody roll is monophonic; chroma agrees with the chord classes where the chord is a plain triad
    assert enc.melody_roll.sum(axis=1).max() == 1
    t = int(np.flatnonzero(enc.chord_class)[0])
    assert set(np.flatnonzero(enc.chroma[t])) <= set(range(12))
    np.testing.assert_array_equal(enc.key_token, key_tokens(enc.chord_class, Key(0, "major")))


def test_shift_roll_drops_out_of_range():
    roll = np.zeros((2, 128), np.uint8)
    roll[0, 127] = roll[1, 0] = roll[1, 60] = 1
    up = shift_roll(roll, 1)
    assert up.sum() == 2 and up[1, 1] == up[1, 61] == 1
    assert shift_roll(roll, -1)[0].sum() == 1 and shift_roll(roll, -1)[1, 59] == 1
    assert shift_roll(roll, 200).sum() == 0


@pytest.mark.parametrize("k", [1, 5, -3, 11])
def test_transpose_round_trip_and_chroma(enc, k):
    moved = transpose(enc, k)
    back = transpose(moved, -k)
    for name in ("melody_roll", "bridge_roll", "piano_roll", "chroma", "chord_class", "key_token"):
        np.testing.assert_array_equal(getattr(back, name), getattr(enc, name), err_msg=name)
    np.testing.assert_array_equal(moved.chroma, np.roll(enc.chroma, k, axis=1))
    np.testing.assert_array_equal(moved.key_token, enc.key_token)
    assert moved.key == Key(k % 12, "major")
    # pitch content moved by exactly k semitones (nothing near the edges in this song)
    p0, p1 = np.nonzero(enc.piano_roll), np.nonzero(moved.piano_roll)
    np.testing.assert_array_equal(p1[1], p0[1] + k)
    # key tokens recomputed from the moved song are the same: they are key-relative
    np.testing.assert_array_equal(key_tokens(moved.chord_class, moved.key), enc.key_token)


def test_transpose_classes_matches_chord_objects():
    cls = np.arange(N_CLASSES)
    for s in (0, 2, 7):
        expect = [chord_from_class(c).transposed(s).class_index for c in cls]
        np.testing.assert_array_equal(transpose_classes(cls, s), expect)
    assert transpose_classes(np.array([0]), 5)[0] == 0
