import numpy as np
import pytest

from harmonize.baseline import harmonize_baseline, harmonize_template, is_diatonic
from harmonize.chords import NO_CHORD, parse_chord
from harmonize.song import Key


def melody_from(notes, n_steps):
    m = np.full(n_steps, -1, dtype=np.int64)
    for start, end, pitch in notes:
        m[start:end] = pitch
    return m


def quarter_notes(pitches, start=0):
    return [(start + 4 * i, start + 4 * i + 4, p) for i, p in enumerate(pitches) if p is not None]


BEATS_3_BARS = list(range(0, 48, 4))


def symbols(spans):
    return [(s.start, s.end, s.chord.symbol) for s in spans]


def test_arpeggios_give_c_f_g():
    melody = melody_from(quarter_notes([60, 64, 67, 64, 65, 69, 72, 69, 67, 71, 74, 71]), 48)
    spans = harmonize_baseline(melody, BEATS_3_BARS, 48)
    assert symbols(spans) == [(0, 16, "C:maj"), (16, 32, "F:maj"), (32, 48, "G:maj")]


def sixteenths(pitches, start=0):
    return [(start + i, start + i + 1, p) for i, p in enumerate(pitches)]


def test_template_needs_the_triad_within_each_beat():
    # one note per beat is ambiguous for the per-beat template; a 16th arpeggio per beat is not
    notes = sixteenths([60, 64, 67, 64] * 4 + [65, 69, 72, 69] * 4 + [67, 71, 74, 71] * 4)
    spans = harmonize_template(melody_from(notes, 48), BEATS_3_BARS, 48)
    assert symbols(spans) == [(0, 16, "C:maj"), (16, 32, "F:maj"), (32, 48, "G:maj")]


def test_hmm_smooths_over_a_passing_tone():
    # bar 1: C | E E E D (a 16th passing tone) | E | G -> C held; bar 2: F A C A -> F
    notes = [(0, 4, 60), (4, 7, 64), (7, 8, 62), (8, 12, 64), (12, 16, 67)] + quarter_notes(
        [65, 69, 72, 69], start=16)
    hmm = harmonize_baseline(melody_from(notes, 32), list(range(0, 32, 4)), 32)
    assert symbols(hmm) == [(0, 16, "C:maj"), (16, 32, "F:maj")]


@pytest.mark.parametrize("fn", [harmonize_baseline, harmonize_template])
def test_rests_keep_previous_chord_and_output_covers_song(fn):
    # a G-major bar, a silent bar, then a C-major bar, then silence to the end (odd length)
    notes = sixteenths([67, 71, 74, 71] * 4) + sixteenths([60, 64, 67, 64] * 4, start=32)
    n = 58
    spans = fn(melody_from(notes, n), list(range(4, n, 4)), n)  # beat list without 0: still covered
    assert spans[0].start == 0 and spans[-1].end == n
    assert all(a.end == b.start for a, b in zip(spans, spans[1:], strict=False))
    assert symbols(spans) == [(0, 32, "G:maj"), (32, n, "C:maj")]


def test_leading_rest_takes_the_first_chord_and_silence_gives_n():
    melody = melody_from(quarter_notes([None, None, None, None, 65, 69, 72, 69]), 32)
    assert symbols(harmonize_baseline(melody, list(range(0, 32, 4)), 32)) == [(0, 32, "F:maj")]
    assert harmonize_baseline(np.full(16, -1), [0, 4, 8, 12], 16)[0].chord == NO_CHORD


def test_key_prior_breaks_ties_towards_diatonic():
    melody = melody_from([(0, 16, 62)], 16)  # a held D: D, Dm, Bb, Bm, G, Gm all contain it
    assert harmonize_baseline(melody, [0, 4, 8, 12], 16)[0].chord.symbol == "D:maj"  # tie -> lowest
    in_f = harmonize_baseline(melody, [0, 4, 8, 12], 16, key=Key(5, "major"))
    assert in_f[0].chord.symbol == "D:min"


def test_is_diatonic():
    assert is_diatonic(parse_chord("E:maj"), Key(9, "minor"))  # V in A minor (leading tone)
    assert not is_diatonic(parse_chord("E:maj"), Key(0, "major"))
    assert is_diatonic(parse_chord("B:dim"), Key(0, "major"))


def test_bar_starts_encourage_changes_there():
    # C E G | F A C over six beats, with unit emission weight, epsilon 0.2: two beats of non-chord
    # tones (2 x 2.48 = 4.97 nats) beat a bar-start change (3.14) but not a mid-bar change (5.58)
    melody = melody_from(quarter_notes([60, 64, 67, 65, 69, 72]), 24)
    beats = list(range(0, 24, 4))
    kw = dict(emission_weight=1.0, epsilon=0.2, p_change_beat=0.08, p_change_bar=0.5, p_change_half=0.08)
    assert symbols(harmonize_baseline(melody, beats, 24, bar_starts=[0, 12], **kw)) == [
        (0, 12, "C:maj"), (12, 24, "F:maj")]
    assert len(harmonize_baseline(melody, beats, 24, bar_starts=[0], **kw)) == 1


def test_half_bar_change_point():
    # 16th arpeggios C E G E x2 | D F# A F# x2 in one bar, unit emission weight: one chord for the
    # whole bar costs about 2 x 2.48 = 4.97 nats, a mid-bar change 3.14, a change elsewhere 6.08
    notes = sixteenths([60, 64, 67, 64] * 2 + [62, 66, 69, 66] * 2)
    melody = melody_from(notes, 16)
    kw = dict(emission_weight=1.0, epsilon=0.2, p_change_beat=0.05, bar_starts=[0])
    spans = harmonize_baseline(melody, [0, 4, 8, 12], 16, p_change_half=0.5, **kw)
    assert symbols(spans) == [(0, 8, "C:maj"), (8, 16, "D:maj")]
    assert len(harmonize_baseline(melody, [0, 4, 8, 12], 16, p_change_half=0.05, **kw)) == 1



def test_deterministic_and_vocabulary():
    rng = np.random.default_rng(0)
    melody = rng.integers(55, 80, size=64)
    a = harmonize_baseline(melody, list(range(0, 64, 4)), 64, vocabulary=("maj", "min", "7"))
    b = harmonize_baseline(melody, list(range(0, 64, 4)), 64, vocabulary=("maj", "min", "7"))
    assert a == b
    assert {s.chord.quality for s in a} <= {"maj", "min", "7"}
    with pytest.raises(ValueError):
        harmonize_baseline(melody, [0], 64, vocabulary=("bogus",))
