"""Structure-aware chord decoding: N.C. outside the melody, REP-consistent chords, learnt transitions,
cadences, per-beat input."""

import json
from pathlib import Path

import numpy as np
import pytest

from harmonize.chords import N_CLASSES, parse_chord
from harmonize.decode import decode_chords, load_transitions
from harmonize.errors import StripeError
from harmonize.pipeline import structure_decoding
from harmonize.song import Grid, Key, Note, Song

C, F, G, AM = (parse_chord(s).class_index for s in ("C:maj", "F:maj", "G:maj", "A:min"))


def beat_rows(weights_per_beat):
    """Per-beat log-probs from {class: logit} dicts (other classes at 0)."""
    rows = []
    for w in weights_per_beat:
        logits = np.zeros(N_CLASSES)
        for c, v in w.items():
            logits[c] = v
        rows.append(logits - np.log(np.exp(logits).sum()))
    return np.array(rows)


def grid(n_bars, bar=16, beat=4):
    return Grid(np.arange(n_bars * bar + 1) * 0.125, list(range(0, n_bars * bar, bar)),
                list(range(0, n_bars * bar, beat)))


def labels(spans):
    per_beat = []
    for s in spans:
        per_beat += [s.chord.class_index] * ((s.end - s.start) // 4)
    return per_beat


def test_no_chord_before_the_first_melody_note_and_after_the_last():
    rows = beat_rows([{C: 6.0}] * 8)
    g = grid(2)
    spans = decode_chords(rows, g.beat_starts, g.bar_starts, 32, beat_level=True, melody_span=(8, 24))
    assert labels(spans) == [0, 0, C, C, C, C, 0, 0]
    # a note starting inside a beat keeps that beat's chord
    spans = decode_chords(rows, g.beat_starts, g.bar_starts, 32, beat_level=True, melody_span=(6, 25))
    assert labels(spans) == [0, C, C, C, C, C, C, 0]
    # the pipeline's settings: on by intro_outro rest only
    song = Song("t", g, [Note(8, 12, 60), Note(12, 24, 64)])
    assert structure_decoding(song, {"intro_outro": "rest"})["melody_span"] == (8, 24)
    assert "melody_span" not in structure_decoding(song, {"intro_outro": "play"})


def test_auto_intro_outro_rests_over_a_pickup_and_plays_an_intro_of_two_bars():
    from harmonize.decode import INTRO_BARS, chord_span

    bars = list(range(0, 160, 16))  # ten bars of 4/4, 16 steps each
    tune = [Note(12, 16, 67), Note(16, 32, 72), Note(32, 40, 71)]  # a one-beat upbeat, ends on beat 3 of bar 2
    assert chord_span(tune, bars, 160, "play") is None
    assert chord_span(tune, bars, 48, "rest") == (12, 40)
    # auto: the upbeat's bar rests before its note; the final chord rings to the end of its bar
    assert chord_span(tune, bars, 48, "auto") == (12, 48)
    # a silence of INTRO_BARS bars before the melody's bar is an intro, and one after its last bar an outro
    song = [Note(n.start + 16 * INTRO_BARS, n.end + 16 * INTRO_BARS, n.pitch) for n in tune]
    assert chord_span(song, bars, 160, "auto") == (0, 160)
    assert chord_span(song, bars, 48 + 16 * INTRO_BARS + 15, "auto") == (0, 48 + 16 * INTRO_BARS)  # < 2 bars after
    shorter = [Note(n.start + 16 * (INTRO_BARS - 1), n.end + 16 * (INTRO_BARS - 1), n.pitch) for n in tune]
    assert chord_span(shorter, bars, 160, "auto")[0] == 12 + 16 * (INTRO_BARS - 1)
    assert chord_span([], bars, 160, "auto") is None  # no melody: chords throughout


def test_repeated_melody_bars_get_the_same_chords():
    phrase = [Note(0, 4, 60), Note(4, 8, 64), Note(8, 12, 67), Note(12, 16, 64)]
    other = [Note(0, 8, 62), Note(8, 16, 65)]
    notes = [Note(n.start + 16 * b, n.end + 16 * b, n.pitch) for b, bar in enumerate([phrase, other, phrase])
             for n in bar]
    song = Song("t", grid(3), notes)
    # bar 0: clearly C; bar 2 (same melody): Am by a hair; bar 1: F
    rows = beat_rows([{C: 6.0}] * 4 + [{F: 6.0}] * 4 + [{C: 3.0, AM: 3.3}] * 4)
    g = song.grid
    plain = decode_chords(rows, g.beat_starts, g.bar_starts, 48, beat_level=True, change_penalty=0,
                          offbar_penalty=0)
    assert labels(plain)[8:] == [AM] * 4
    kw = structure_decoding(song, {"rep_weight": 0.5})
    assert list(kw["rep_groups"][:4]) == list(kw["rep_groups"][8:]) and (kw["rep_groups"][4:8] == -1).all()
    rep = decode_chords(rows, g.beat_starts, g.bar_starts, 48, beat_level=True, change_penalty=0,
                        offbar_penalty=0, **kw)
    assert labels(rep) == [C] * 4 + [F] * 4 + [C] * 4
    # a confident model still wins over the repetition
    rows[8:] = beat_rows([{AM: 9.0}] * 4)
    rep = decode_chords(rows, g.beat_starts, g.bar_starts, 48, beat_level=True, change_penalty=0,
                        offbar_penalty=0, **kw)
    assert labels(rep)[8:] == [AM] * 4


def write_transitions(path, favour):
    m = np.full((N_CLASSES, N_CLASSES), 1.0)
    m[C, favour] = 1000.0
    np.fill_diagonal(m, 0.0)
    m /= m.sum(1, keepdims=True)
    table = {"format": "stripe-transitions/1", "major": m.tolist(), "minor": m.tolist(),
             "change_by_beat": [0.9, 0.1, 0.4, 0.1]}
    path.write_text(json.dumps(table))
    return path


def test_learnt_transitions_from_json_change_the_decode(tmp_path):
    # beat 4-7 (bar 2) is F or G by a hair: the learnt bigram C -> x decides, in the key's frame
    rows = beat_rows([{C: 6.0}] * 4 + [{F: 4.0, G: 4.0}] * 4)
    g = grid(2)
    for favour in (F, G):
        tr = load_transitions(write_transitions(tmp_path / f"{favour}.json", favour))
        spans = decode_chords(rows, g.beat_starts, g.bar_starts, 32, beat_level=True, key=Key(0, "major"),
                              transitions=tr)
        assert labels(spans) == [C] * 4 + [favour] * 4
    # key-relative: in D major the same table favours the transposed chord after D
    d, a = parse_chord("D:maj").class_index, parse_chord("A:maj").class_index
    rows = beat_rows([{d: 6.0}] * 4 + [{parse_chord("G:maj").class_index: 4.0, a: 4.0}] * 4)
    tr = load_transitions(tmp_path / f"{G}.json")
    spans = decode_chords(rows, g.beat_starts, g.bar_starts, 32, beat_level=True, key=Key(2, "major"),
                          transitions=tr)
    assert labels(spans)[4:] == [a] * 4
    # sampling with transitions runs and gives a valid path
    spans = decode_chords(rows, g.beat_starts, g.bar_starts, 32, beat_level=True, key=Key(2, "major"),
                          transitions=tr, temperature=1.0, rng=np.random.default_rng(1))
    assert len(labels(spans)) == 8


def test_corpus_prior_divides_out_the_learnt_chord_frequencies(tmp_path):
    from harmonize.decode import corpus_chord_prior

    tr = load_transitions(write_transitions(tmp_path / "f.json", F))  # F follows C: F is the common chord
    prior = corpus_chord_prior(tr, Key(0, "major"))
    assert prior.argmax() == F and prior[0] == 0.0
    d_major = corpus_chord_prior(tr, Key(2, "major"))  # key-relative: in D the common chord is G
    assert d_major.argmax() == parse_chord("G:maj").class_index
    np.testing.assert_allclose(np.sort(d_major), np.sort(prior))
    # F is a little likelier than G to the model; divided by the corpus' liking for F, G wins
    rows = beat_rows([{F: 4.0, G: 3.8}] * 4)
    g = grid(1)
    for weight, want in ((0.0, F), (1.0, G)):
        spans = decode_chords(rows, g.beat_starts, g.bar_starts, 16, beat_level=True, key=Key(0, "major"),
                              transitions=tr, corpus_prior_weight=weight)
        assert labels(spans) == [want] * 4


def test_bad_transitions_file_is_one_line_error(tmp_path):
    bad = tmp_path / "transitions.json"
    bad.write_text(json.dumps({"format": "stripe-transitions/1", "major": [[1]], "minor": [[1]],
                               "change_by_beat": [0.5]}))
    with pytest.raises(StripeError, match="bad transitions file"):
        load_transitions(bad)
    bad.write_text("{not json")
    with pytest.raises(StripeError, match="unreadable"):
        load_transitions(bad)
    good = json.loads((Path(__file__).parents[1] / "models" / "pop909-beat" / "transitions.json").read_text())
    for weight in (0, -1, float("nan"), 1e9):
        bad.write_text(json.dumps(good | {"weight": weight}))
        with pytest.raises(StripeError, match="weight must be in"):
            load_transitions(bad)


def test_final_note_cadences_on_the_tonic():
    # the held final note (bar 2) is as much Am as C to the model; the cadence bonus makes it I, V before it
    rows = beat_rows([{F: 6.0}] * 4 + [{G: 3.0, parse_chord("E:min").class_index: 3.2}] * 4
                     + [{C: 3.0, AM: 3.2}] * 4)
    g = grid(3)
    args = (rows, g.beat_starts, g.bar_starts, 48)
    plain = decode_chords(*args, beat_level=True, key=Key(0, "major"), change_penalty=0, offbar_penalty=0)
    assert labels(plain)[8:] == [AM] * 4
    cad = decode_chords(*args, beat_level=True, key=Key(0, "major"), change_penalty=0, offbar_penalty=0,
                        cadence_weight=1.0, final_note=(32, 48))
    assert labels(cad)[8:] == [C] * 4
    # in A minor the same melody cadences on Am
    cad = decode_chords(*args, beat_level=True, key=Key(9, "minor"), change_penalty=0, offbar_penalty=0,
                        cadence_weight=1.0, final_note=(32, 48))
    assert labels(cad)[8:] == [AM] * 4


def test_step_and_beat_level_inputs_agree():
    rows = beat_rows([{C: 5.0}] * 4 + [{F: 5.0}] * 4)
    g = grid(2)
    steps = np.repeat(rows, 4, axis=0)
    a = decode_chords(steps, g.beat_starts, g.bar_starts, 32, key=Key(0, "major"))
    b = decode_chords(rows, g.beat_starts, g.bar_starts, 32, key=Key(0, "major"), beat_level=True)
    assert labels(a) == labels(b) == [C] * 4 + [F] * 4


def test_harmonizer_leaves_the_intro_and_outro_empty(tmp_path):
    from tiny_models import tiny_harmonizer

    from harmonize.pipeline import HarmonizeOptions, Harmonizer

    folder = tiny_harmonizer(tmp_path / "h")
    (folder / "harmonizer.json").write_text(json.dumps(
        {"decoding": {"threshold": 0.05, "gap": 1, "intro_outro": "rest", "none_penalty": 0.0}}))
    notes = [Note(16 + 4 * i, 20 + 4 * i, 60 + 2 * (i % 4)) for i in range(8)]  # bars 1 and 2 of 4
    song = Song("t", grid(4), notes)
    result = Harmonizer.load(str(folder))(song, HarmonizeOptions(key=Key(0, "major")))
    assert all(s.chord.is_none for s in result.chords if s.end <= 16 or s.start >= 48)
    assert any(not s.chord.is_none for s in result.chords)
    assert result.accompaniment and all(16 <= n.start and n.end <= 48 for n in result.accompaniment)
    # --intro-outro overrides the folder's setting either way; rest is what the folder says here
    harmonizer = Harmonizer.load(str(folder))
    rest = harmonizer(song, HarmonizeOptions(key=Key(0, "major"), intro_outro="rest"))
    assert rest.chords == result.chords
    play = harmonizer(song, HarmonizeOptions(key=Key(0, "major"), intro_outro="play"))
    assert not play.chords[0].chord.is_none and play.chords[0].start == 0
    assert any(n.start < 16 or n.end > 48 for n in play.accompaniment)
    with pytest.raises(StripeError, match="--intro-outro"):
        harmonizer(song, HarmonizeOptions(intro_outro="loud"))
    # auto: a bar's silence before the melody and one after it rest; two bars before it are an intro, played
    assert harmonizer(song, HarmonizeOptions(key=Key(0, "major"), intro_outro="auto")).chords == result.chords
    later = Song("t", grid(5), [Note(n.start + 16, n.end + 16, n.pitch) for n in notes])  # bars 2 and 3 of 5
    auto = harmonizer(later, HarmonizeOptions(key=Key(0, "major"), intro_outro="auto"))
    assert not auto.chords[0].chord.is_none and auto.chords[0].start == 0
    assert auto.chords[-1].chord.is_none and auto.chords[-1].start == 64
    assert any(n.start < 32 for n in auto.accompaniment) and all(n.end <= 64 for n in auto.accompaniment)


def test_melody_fit_picks_the_chord_whose_tones_the_melody_plays():
    # the model leans to Am over a bar of E-G-E-G; C holds both notes, Am only the E: the fit makes it C
    rows = beat_rows([{C: 3.0, AM: 3.3}] * 4)
    g = grid(1)
    melody = np.repeat([64, 67, 64, 67], 4)  # E G E G, one per beat
    args = (rows, g.beat_starts, g.bar_starts, 16)
    one_chord = dict(beat_level=True, change_penalty=5, offbar_penalty=0)  # a chord for the whole bar
    assert set(labels(decode_chords(*args, **one_chord))) == {AM}
    fit = decode_chords(*args, **one_chord, melody_steps=melody, melody_fit_weight=1.0)
    assert set(labels(fit)) == {C}
    # rests carry no evidence: a silent bar leaves the model's choice alone
    silent = decode_chords(*args, **one_chord, melody_steps=np.full(16, -1), melody_fit_weight=20.0)
    assert set(labels(silent)) == {AM}


def test_phrase_ends_are_held_notes_on_beats_and_cadence():
    from harmonize.structure import phrase_end_notes

    g = grid(4)
    # bar 1: four quarter notes; bar 2 starts a held G (a half-cadence) then a breath; bars 3-4 end on C
    notes = [Note(s, s + 4, p) for s, p in zip((0, 4, 8, 12), (60, 62, 64, 65), strict=True)]
    notes += [Note(16, 26, 67), Note(32, 36, 64), Note(36, 40, 62), Note(40, 48, 60), Note(48, 64, 60)]
    song = Song("t", g, notes)
    ends = phrase_end_notes(song)
    assert ends == [(16, 26, 67), (40, 48, 60)]  # the held G and the C held into the last bar's note
    assert phrase_end_notes(Song("t", g, notes[:1])) == []
    # a phrase-closing tonic gets I, a supertonic or leading tone V, under the model's doubt
    rows = beat_rows([{C: 3.0, AM: 3.2}] * 16)
    args = (rows, g.beat_starts, g.bar_starts, 64)
    plain = decode_chords(*args, beat_level=True, key=Key(0, "major"), change_penalty=0, offbar_penalty=0)
    cad = decode_chords(*args, beat_level=True, key=Key(0, "major"), change_penalty=0, offbar_penalty=0,
                        phrase_ends=[(40, 48, 60)], phrase_cadence_weight=1.0)
    assert labels(plain)[10:12] == [AM, AM] and labels(cad)[10:12] == [C, C]
    assert labels(cad)[:10] == labels(plain)[:10]
    half = decode_chords(*args, beat_level=True, key=Key(0, "major"), change_penalty=0, offbar_penalty=0,
                         phrase_ends=[(16, 24, 62)], phrase_cadence_weight=5.0)
    assert labels(half)[4:6] == [G, G]
    # the fifth degree belongs to both I and V: no push either way
    fifth = decode_chords(*args, beat_level=True, key=Key(0, "major"), change_penalty=0, offbar_penalty=0,
                          phrase_ends=[(16, 24, 67)], phrase_cadence_weight=5.0)
    assert labels(fifth) == labels(plain)


def test_structure_decoding_passes_the_new_settings_only_when_set():
    g = grid(2)
    song = Song("t", g, [Note(0, 12, 60), Note(16, 32, 67)])
    off = structure_decoding(song, {"intro_outro": "play"})
    assert "melody_steps" not in off and "phrase_ends" not in off
    on = structure_decoding(song, {"melody_fit_weight": 1.0, "phrase_cadence_weight": 2.0})
    assert on["melody_fit_weight"] == 1.0 and len(on["melody_steps"]) == 32 and on["melody_steps"][0] == 60
    assert on["phrase_cadence_weight"] == 2.0 and on["phrase_ends"] == [(0, 12, 60)]


def test_change_points_follow_the_meter_and_the_melody_span():
    from harmonize.decode import change_points

    g = grid(2)  # 4/4, beats every 4 steps
    assert change_points("beat", g.beat_starts, g.bar_starts) is None  # no constraint
    assert change_points("bar", g.beat_starts, g.bar_starts).tolist() == [1, 0, 0, 0] * 2
    assert change_points("half", g.beat_starts, g.bar_starts).tolist() == [1, 0, 1, 0] * 2
    waltz = Grid(np.arange(25) * 0.125, [0, 12], list(range(0, 24, 4)))  # 3/4: no middle beat
    assert change_points("half", waltz.beat_starts, waltz.bar_starts).tolist() == [1, 0, 0] * 2
    # the melody starting on beat 2 and ending within beat 3 of bar 2: both may change, so N can end / begin
    span = change_points("bar", g.beat_starts, g.bar_starts, span=(5, 26))
    assert span.tolist() == [1, 1, 1, 0, 1, 0, 1, 1]
    for bad in ("weekly", "auto"):  # auto is resolved first (auto_harmonic_rhythm)
        with pytest.raises(ValueError):
            change_points(bad, g.beat_starts, g.bar_starts)


def test_auto_harmonic_rhythm_frees_changes_in_four_and_keeps_a_chord_a_bar_in_three():
    from harmonize.decode import auto_harmonic_rhythm

    g = grid(4)  # 4/4
    hymn = [Note(s, s + 4, 60 + s % 7) for s in range(0, 64, 4)]  # a quarter note on every beat
    assert auto_harmonic_rhythm(hymn, g.beat_starts, g.bar_starts) == "beat"
    song = [Note(s, s + 2 + (s % 3), 60) for s in range(0, 64, 3)]  # syncopated, off the beat
    assert auto_harmonic_rhythm(song, g.beat_starts, g.bar_starts) == "beat"
    two = Grid(np.arange(65) * 0.125, list(range(0, 64, 8)), list(range(0, 64, 4)))  # 2/4: half = every beat
    assert auto_harmonic_rhythm(song, two.beat_starts, two.bar_starts) == "half"
    waltz = Grid(np.arange(49) * 0.125, list(range(0, 48, 12)), list(range(0, 48, 4)))
    quarters = [Note(s, s + 4, 60) for s in range(0, 48, 4)]  # a waltz in quarters: one chord a bar
    assert auto_harmonic_rhythm(quarters, waltz.beat_starts, waltz.bar_starts) == "half"
    assert auto_harmonic_rhythm(hymn[:3], g.beat_starts, g.bar_starts) == "beat"  # too few notes to judge


@pytest.mark.parametrize("learnt", [False, True])
def test_decoding_changes_chords_only_where_allowed(learnt, tmp_path):
    from harmonize.decode import change_points

    # the model wants a new chord every second beat; "bar" allows one a bar, "half" two
    rows = beat_rows([{C: 9.0}, {C: 9.0}, {G: 8.0}, {G: 8.0}, {AM: 9.0}, {AM: 9.0}, {F: 8.0}, {F: 8.0}])
    g = grid(2)
    transitions = None
    if learnt:
        path = tmp_path / "t.json"
        flat = np.full((N_CLASSES, N_CLASSES), 1.0).tolist()
        path.write_text(json.dumps({"format": "stripe-transitions/1", "weight": 1.0, "major": flat, "minor": flat,
                                    "change_by_beat": [0.5, 0.5, 0.5, 0.5]}))
        transitions = load_transitions(path)
    args = (rows, g.beat_starts, g.bar_starts, 32)
    free = decode_chords(*args, beat_level=True, change_penalty=0, offbar_penalty=0, transitions=transitions)
    assert labels(free) == [C, C, G, G, AM, AM, F, F]
    by_bar = decode_chords(*args, beat_level=True, change_penalty=0, offbar_penalty=0, transitions=transitions,
                           change_allowed=change_points("bar", g.beat_starts, g.bar_starts))
    assert labels(by_bar) == [C] * 4 + [AM] * 4  # each bar keeps its stronger chord
    halves = decode_chords(*args, beat_level=True, change_penalty=0, offbar_penalty=0, transitions=transitions,
                           change_allowed=change_points("half", g.beat_starts, g.bar_starts))
    assert labels(halves) == labels(free)  # every change the model wants falls on a half bar
    sampled = decode_chords(*args, beat_level=True, change_penalty=0, offbar_penalty=0, transitions=transitions,
                            temperature=1.0, rng=np.random.default_rng(0),
                            change_allowed=change_points("bar", g.beat_starts, g.bar_starts))
    assert {s.start for s in sampled} <= {0, 16}  # sampling obeys it too


def test_decoder_sweep_refuses_a_setting_the_chord_stage_reads():
    import subprocess
    import sys

    # the sweep decodes posteriors computed once: sweeping the window overlap would silently change nothing
    done = subprocess.run([sys.executable, "-m", "benchmarks.decoder_sweep", "--data", "nowhere",
                           "--sweep", "beat_window_overlap=0,0.5"], capture_output=True, text=True,
                          cwd=Path(__file__).parents[1])
    assert done.returncode == 2 and "beat_window_overlap" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_decoder_sweep_refuses_an_unknown_setting_and_can_take_the_annotated_key(tmp_path, monkeypatch):
    import subprocess
    import sys

    from tiny_models import tiny_harmonizer

    root = Path(__file__).parents[1]
    done = subprocess.run([sys.executable, "-m", "benchmarks.decoder_sweep", "--data", "nowhere",
                           "--sweep", "prior_wieght=0.5"], capture_output=True, text=True, cwd=root)
    assert done.returncode == 2 and "prior_wieght" in done.stderr and "Traceback" not in done.stderr

    if str(root) not in sys.path:  # benchmarks/ is not an installed package
        sys.path.insert(0, str(root))
    from benchmarks.decoder_sweep import prepare
    from harmonize.data.pop909 import load_song_cached
    from harmonize.pipeline import Harmonizer

    monkeypatch.setenv("STRIPE_CACHE", str(tmp_path / "cache"))
    harmonizer = Harmonizer.load(str(tiny_harmonizer(tmp_path / "h")))
    song_dir = root / "tests" / "fixtures" / "pop909_mini" / "098"
    annotated = load_song_cached(song_dir)
    wrong = Key((annotated.key.tonic + 7) % 12, annotated.key.mode)  # an estimate in the dominant's key
    monkeypatch.setattr("harmonize.structure.estimate_key", lambda song: wrong)
    assert prepare(song_dir, harmonizer, "grid", tmp_path, None)[1] == wrong
    assert prepare(song_dir, harmonizer, "grid", tmp_path, None, annotated_key=True)[1] == annotated.key


def test_prior_correction_shrinks_for_a_short_melody():
    from harmonize.hub import DEFAULT_DECODING
    from harmonize.pipeline import prior_weight

    g = grid(64)  # 64 bars of 4 beats, 4 steps a beat
    settings = DEFAULT_DECODING | {"prior_weight": 0.8, "prior_full_bars": 48}
    tune = Song("t", g, [Note(16 * b, 16 * b + 8, 60 + b % 5) for b in range(4, 16)])  # 12 bars of melody
    assert prior_weight(tune, settings) == pytest.approx(0.8 * 12 / 48)
    song = Song("s", g, [Note(16 * b, 16 * b + 8, 60 + b % 5) for b in range(2, 62)])  # 60 bars
    assert prior_weight(song, settings) == 0.8
    assert prior_weight(tune, settings | {"prior_full_bars": 0}) == 0.8  # 0: off, as before
    assert prior_weight(Song("e", g, []), settings) == 0.8


def test_decoder_sweep_reads_switches_numbers_and_names():
    import sys

    root = str(Path(__file__).resolve().parents[1])
    if root not in sys.path:  # benchmarks/ is not an installed package
        sys.path.insert(0, root)
    from benchmarks.decoder_sweep import _setting_value

    assert _setting_value("false") is False and _setting_value(" True") is True
    assert _setting_value("0.75") == 0.75
    assert _setting_value("auto ") == "auto"
