"""Structure labels: key, local keys, melodic repetition, chords read from a harmony track."""

from __future__ import annotations

import numpy as np
import pytest

from harmonize.chords import parse_chord
from harmonize.errors import StripeError
from harmonize.song import ChordSpan, Grid, Key, Note, Song
from harmonize.structure import (
    bars_similar,
    chords_from_notes,
    estimate_key,
    find_chord_track,
    label_song,
    local_keys,
    mean_polyphony,
    melody_repetition,
    parse_key,
    per_step,
)


def grid_4_4(n_bars: int, bar_len: int = 16, beat_len: int = 4) -> Grid:
    n = n_bars * bar_len
    return Grid(np.arange(n + 1) * 0.125, list(range(0, n, bar_len)), list(range(0, n, beat_len)),
                [(0, 4, 4)])


def song_of(bars: list[list[tuple[int, int, int]]], bar_len: int = 16) -> Song:
    """Melody from per-bar ``(onset, length, pitch)`` lists."""
    notes = [Note(b * bar_len + on, b * bar_len + on + ln, p) for b, bar in enumerate(bars) for on, ln, p in bar]
    return Song("t", grid_4_4(len(bars), bar_len), notes)


MAJOR_SCALE = [0, 2, 4, 5, 7, 9, 11, 12]


def scale_bars(tonic: int, minor: bool = False, n_bars: int = 4):
    steps = [0, 2, 3, 5, 7, 8, 11, 12] if minor else MAJOR_SCALE  # harmonic minor
    tune = [60 + tonic + s for s in steps] + [60 + tonic + 7, 60 + tonic + 4 - minor, 60 + tonic]
    long = {0: 4, len(tune) - 1: 8}  # weight the tonic as real tunes do
    notes = [(i * 2, long.get(i, 2), p) for i, p in enumerate(tune)]
    return [[(on % 16, ln, p) for on, ln, p in notes if on // 16 == b] for b in range(n_bars)]


@pytest.mark.parametrize("tonic", [0, 2, 7, 10])
def test_estimate_key_major_and_minor(tonic):
    assert estimate_key(song_of(scale_bars(tonic))) == Key(tonic, "major")
    assert estimate_key(song_of(scale_bars(tonic, minor=True))) == Key(tonic, "minor")


def test_estimate_key_agrees_with_music21():
    from music21 import note, stream

    for tonic, minor in [(0, False), (9, True), (4, False), (5, True)]:
        song = song_of(scale_bars(tonic, minor))
        s = stream.Stream()
        for n in song.melody:
            m = note.Note(n.pitch)
            m.quarterLength = (n.end - n.start) / 4
            s.insert(n.start / 4, m)
        ref = s.analyze("key.krumhanslschmuckler")
        ours = estimate_key(song)
        assert (ours.tonic, ours.mode) == (ref.tonic.pitchClass, ref.mode)


def test_local_keys_follow_a_modulation_with_hysteresis():
    bars = []
    for b in range(16):
        tonic = 0 if b < 8 else 3
        tune = [60 + tonic + s for s in (0, 4, 7, 12 - 1, 12, 7, 5, 2)] if b % 2 else \
            [60 + tonic + s for s in (0, 2, 4, 5, 7, 9, 11, 12)]
        bars.append([(i * 2, 2, p) for i, p in enumerate(tune)])
    keys = local_keys(song_of(bars), window_bars=4)
    assert keys[0] == (0, Key(0, "major"))
    assert len(keys) == 2 and 6 <= keys[1][0] <= 9 and keys[1][1] == Key(3, "major")


def test_repetition_exact_ornament_changed_note_and_transposition():
    a = [(0, 4, 60), (4, 4, 62), (8, 4, 64), (12, 4, 65)]
    b = [(0, 8, 67), (8, 8, 69)]
    ornament = [(0, 4, 60), (4, 1, 61), (5, 3, 62), (8, 4, 64), (12, 4, 65)]
    changed = [(0, 4, 60), (4, 4, 62), (8, 4, 63), (12, 4, 65)]
    transposed = [(on, ln, p + 2) for on, ln, p in a]
    short_changed = [(0, 8, 67), (8, 8, 71)]
    ids = melody_repetition(song_of([a, b, a, ornament, changed, transposed, b, short_changed, []]))
    assert ids.tolist() == [0, 1, 0, 0, 0, 2, 1, 3, 4]
    assert not bars_similar([(0, 60)], [(0, 62)])


def test_per_step_expands_bars():
    grid = Grid(np.arange(29) * 0.1, [0, 12, 20], list(range(0, 28, 4)))
    out = per_step(np.array([5, 6, 7]), grid)
    assert out.shape == (28,) and out[11] == 5 and out[12] == 6 and out[19] == 6 and out[27] == 7


def test_chords_from_notes_reads_a_block_chord_track():
    grid = grid_4_4(2)
    notes = [Note(0, 8, p) for p in (48, 52, 55)] + [Note(8, 16, p) for p in (45, 48, 52, 55)]
    notes += [Note(16, 32, p) for p in (43, 47, 50, 53)] + [Note(18, 19, 61)]  # a passing tone
    spans = chords_from_notes(notes, grid)
    got = [(s.start, s.end, s.chord.symbol) for s in spans]
    assert got == [(0, 8, "C:maj"), (8, 16, "A:min7"), (16, 32, "G:7")]


def test_find_chord_track_and_polyphony():
    mono = [Note(i * 4, i * 4 + 4, 60 + i) for i in range(16)]
    block = [Note(b * 16, b * 16 + 16, p + b) for b in range(4) for p in (48, 52, 55)]
    assert mean_polyphony(mono) == 1.0 and mean_polyphony(block) == 3.0
    assert find_chord_track({"Bass": mono}) is None
    assert find_chord_track({"Keys": block[:6]}) is None  # too few notes to call it a chord track
    assert find_chord_track({"Bass": mono, "Keys": block}) == "Keys"
    assert find_chord_track({"Bass": mono, "chords": block[:3]}) == "chords"


def test_parse_key_forms():
    assert parse_key("A minor") == Key(9, "minor")
    assert parse_key("Am") == Key(9, "minor")
    assert parse_key("A:min") == Key(9, "minor")
    assert parse_key("F# major") == Key(6, "major")
    assert parse_key("Eb") == Key(3, "major")
    assert parse_key("c#m") == Key(1, "minor")
    assert parse_key("BbM") == Key(10, "major")
    for bad in ("H", "A dorian", "", "Am7", "C##"):
        with pytest.raises(StripeError, match="cannot read key"):
            parse_key(bad)


def test_label_song_sources():
    song = song_of(scale_bars(7, n_bars=4))
    block = [Note(b * 16, b * 16 + 16, p) for b in range(4) for p in (55, 59, 62)]
    song.others = {"Pad": block}
    st = label_song(song)
    assert st.key == Key(7, "major") and st.key_source == "estimated"
    assert st.chord_source == "track:Pad" and [c.chord.symbol for c in st.chords] == ["G:maj"]
    assert st.chroma.shape == (64, 12) and st.chroma[0].nonzero()[0].tolist() == [2, 7, 11]
    assert st.key_tokens.shape == st.rep_tokens.shape == (64,)
    assert st.key_tokens[0] == parse_chord("C").class_index  # G in G major -> I
    assert len(st.bar_rep) == 4

    given = [ChordSpan(0, 64, parse_chord("Em"))]
    st = label_song(song, key=Key(4, "minor"), chords=given)
    assert (st.key_source, st.chord_source, st.chords) == ("given", "given", given)
    assert st.key_tokens[0] == parse_chord("Cm").class_index + 109

    song.others = {}
    song.key = Key(2, "major")
    st = label_song(song)
    assert (st.key_source, st.chord_source, st.chords) == ("song", "none", None)
    assert not st.chroma.any()


@pytest.mark.pop909
def test_estimate_key_on_pop909(pop909_dir):
    """Sanity check against the annotated keys of 20 songs (major/minor folded to the key label)."""
    import json

    from harmonize.chords import parse_pitch_class
    from harmonize.io.midi import read_song

    hits = total = 0
    for i in json.loads((pop909_dir / "split.json").read_text())["train"][:20]:
        folder = pop909_dir / f"{i:03d}"
        label = (folder / "key_audio.txt").read_text().split()[2]  # start end KEY, e.g. Gb:maj
        tonic, mode = label.split(":")
        song = read_song(folder / f"{i:03d}.mid", melody_track="MELODY")
        key = estimate_key(song)
        total += 1
        hits += key == Key(parse_pitch_class(tonic), "major" if mode.startswith("maj") else "minor")
    assert hits / total >= 0.6, f"{hits}/{total}"


def _tune(pitches, lengths=None):
    """A melody of (pitch, 16ths) in 4/4 bars for ``song_of``."""
    lengths = lengths or [4] * len(pitches)
    notes, t = [], 0
    for p, ln in zip(pitches, lengths, strict=True):
        notes.append((t, ln, p))
        t += ln
    return [[(on % 16, ln, p) for on, ln, p in notes if on // 16 == b] for b in range((t + 15) // 16)]


def test_estimate_key_does_not_pick_the_dominant():
    from harmonize.structure import estimate_key_profile

    # C-D-E-F-G: the profile alone reads G major (F is not in its scale)
    five = song_of(_tune([60, 62, 64, 65, 67], [4, 4, 4, 4, 16]))
    assert estimate_key_profile(five) == Key(7, "major")
    assert estimate_key(five) == Key(0, "major")
    # a jig-like tune in D that dwells on A: the profile alone reads A major
    jig = [62, 66, 69, 69, 69, 64, 69, 71, 69, 67, 66, 64, 69, 69, 73, 69, 66, 64, 62]
    jig_song = song_of(_tune(jig, [2] * 18 + [8]))
    assert estimate_key(jig_song) == Key(2, "major")


def test_local_keys_open_in_the_global_key():
    # G minor with a bright opening (B natural as the leading tone's neighbour) stays G minor at bar 1
    tune = [67, 71, 74, 71, 67, 70, 69, 67, 74, 72, 70, 69, 67, 66, 67, 62, 70, 69, 67, 67]
    song = song_of(_tune(tune, [4] * 19 + [16]))
    glob = estimate_key(song)
    assert local_keys(song, window_bars=4)[0] == (0, glob)
