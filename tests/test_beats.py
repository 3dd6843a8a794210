"""Beat grid from the notes: quantization detector, beat tracker, downbeats, tempo map and re-timed output."""

import json

import mido
import numpy as np
import pretty_midi
import pytest
from midi_factory import Track, make_midi
from typer.testing import CliRunner

from harmonize.beats import f_measure, infer_beats, is_quantized, quantization_share, track_beats
from harmonize.cli import app
from harmonize.io.midi import read_song
from harmonize.io.tempo_map import TempoMap

RES = 480
# one bar of 4/4 in beats: a long note on the downbeat, then shorter ones (start, length, scale degree)
BAR = [(0.0, 1.5, 0), (1.5, 0.5, 2), (2.0, 1.0, 4), (3.0, 0.75, 2)]
ROOTS = [60, 65, 67, 60]  # C F G C, one per bar


def performance(bars=32, bpm0=100.0, bpm1=110.0, start=0.37, jitter=0.02, seed=0):
    """A melody played with a drifting tempo, starting off the grid, each onset jittered: returns
    (notes as (start s, end s, pitch), true beat times, true downbeat times)."""
    rng = np.random.default_rng(seed)
    n_beats = bars * 4 + 1
    bpm = np.linspace(bpm0, bpm1, n_beats)
    beats = start + np.concatenate([[0.0], np.cumsum(60.0 / bpm[:-1])])
    notes = []
    for b in range(bars):
        for pos, length, degree in BAR:
            k = b * 4 + pos
            t0 = float(np.interp(k, np.arange(n_beats), beats)) + rng.uniform(-jitter, jitter)
            t1 = float(np.interp(k + length, np.arange(n_beats), beats)) - 0.02
            notes.append((t0, t1, ROOTS[b % 4] + (0, 2, 4, 5, 7)[degree]))
    return notes, beats, beats[::4]


def write_performance(path, notes, bpm=100.0, extra_tracks=()):
    """Seconds -> ticks at one constant tempo (the file's grid is not the music's)."""
    def tick(t):
        return int(round(t * bpm / 60.0 * RES))

    tracks = [Track("Melody", [(tick(a), max(tick(a) + 1, tick(b)), p) for a, b, p in notes])]
    return make_midi(path, tracks + list(extra_tracks), tempos=[(0, bpm)])


def test_quantization_share_on_and_off_the_grid():
    on = np.arange(64) * RES // 4  # 16ths
    assert quantization_share(on, RES) == 1.0 and is_quantized(on, RES)
    triplets = np.arange(48) * RES // 3
    assert is_quantized(triplets, RES)
    rng = np.random.default_rng(1)
    shifted = on + 0.3 * RES + rng.uniform(-0.04, 0.04, len(on)) * RES  # 0.3 beat late, +-20 ms at 120 bpm
    assert not is_quantized(shifted, RES)
    # 8ths a third of a beat late (a POP909 file): all on the triplet grid, but really a shifted straight grid
    late = on[::2] + RES // 3
    assert quantization_share(late, RES) == 1.0 and not is_quantized(late, RES)
    mixed = np.sort(np.concatenate([on[::2], triplets[1::3]]))  # straight 8ths and some triplets
    assert is_quantized(mixed, RES)


def test_quantized_file_keeps_its_grid_and_shifted_jittered_copy_does_not(tmp_path):
    quantized = [(b * 4 * RES + int(p * RES), b * 4 * RES + int((p + ln) * RES), 60 + d)
                 for b in range(8) for p, ln, d in BAR]
    make_midi(tmp_path / "q.mid", [Track("Melody", quantized)])
    assert read_song(tmp_path / "q.mid").grid_source == "file"
    rng = np.random.default_rng(0)
    shift = int(0.3 * RES)
    jittered = [(a + shift + int(rng.uniform(-0.02, 0.02) * 2 * RES), b + shift, p) for a, b, p in quantized]
    make_midi(tmp_path / "j.mid", [Track("Melody", jittered)])  # 120 bpm: 20 ms = 0.04 beat
    song = read_song(tmp_path / "j.mid")
    assert song.grid_source == "notes"
    assert read_song(tmp_path / "j.mid", grid="file").grid_source == "file"
    assert read_song(tmp_path / "q.mid", grid="notes").grid_source == "notes"


@pytest.mark.parametrize("seed", [0, 1])
def test_beats_of_a_drifting_jittered_performance(seed):
    notes, beats, downbeats = performance(seed=seed)
    on = np.array([a for a, _, _ in notes])
    dur = np.array([b - a for a, b, _ in notes])
    pitch = np.array([p for _, _, p in notes])
    found = infer_beats(on, dur, pitch, tempo_bpm=100.0)
    assert f_measure(found.times, beats[:-1], 0.07) > 0.95
    assert 95 <= found.tempo_bpm <= 115
    assert f_measure(found.times[found.downbeats], downbeats[:-1], 0.07) > 0.9


def test_tracker_finds_the_tempo_when_the_file_tempo_is_wrong():
    notes, beats, _ = performance(bpm0=90.0, bpm1=90.0, jitter=0.01)
    on = np.array([a for a, _, _ in notes])
    dur = np.array([b - a for a, b, _ in notes])
    times = track_beats(on, dur, tempo_bpm=100.0)  # a transcription tagged with another tempo
    assert f_measure(times, beats[:-1], 0.07) > 0.9


def test_f_measure():
    ref = np.arange(10.0)
    assert f_measure(ref, ref) == 1.0
    assert f_measure(ref + 0.05, ref, 0.07) == 1.0
    assert f_measure(ref + 0.5, ref, 0.07) == 0.0
    assert f_measure(ref[::2], ref) == pytest.approx(2 * 1.0 * 0.5 / 1.5)


def test_tempo_map_round_trip_and_bars():
    beats = np.array([0.4, 1.0, 1.6, 2.25, 2.9, 3.5, 4.1, 4.7, 5.3])
    flags = np.array([0, 1, 0, 0, 0, 1, 0, 0, 0], dtype=bool)
    tm = TempoMap.from_beats(beats, flags, 4)
    assert tm.beat_times[0] == 0.0
    ticks = tm.seconds_to_ticks(beats)
    np.testing.assert_allclose(tm.ticks_to_seconds(ticks), beats, atol=1e-3)
    assert np.all(ticks % tm.resolution == 0)  # every beat on a beat of the file
    # the first downbeat (1.0 s) starts a bar: a pickup bar before it, then 4/4
    down_tick = int(tm.seconds_to_ticks([1.0])[0])
    assert tm.time_signatures[0][0] == 0 and tm.time_signatures[-1] == (down_tick, 4, 4)
    assert sum(n for _, n, _ in tm.time_signatures[:-1]) * tm.resolution == down_tick


def test_inferred_grid_output_keeps_every_note_in_seconds_and_follows_the_beats(tmp_path):
    notes, beats, downbeats = performance(bars=16, seed=3)
    chords_in = Track("Pad", [(int(round(a * 100 / 60 * RES)), int(round(b * 100 / 60 * RES)), p - 12)
                              for a, b, p in notes[::4]], program=48)
    src = write_performance(tmp_path / "perf.mid", notes, extra_tracks=[chords_in])
    out = tmp_path / "out.mid"
    from tiny_models import tiny_harmonizer

    model = tiny_harmonizer(tmp_path / "m")
    res = CliRunner().invoke(app, ["harmonize", str(src), "-o", str(out), "--model", str(model), "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)[0]
    assert summary["grid"] == "notes"
    before = pretty_midi.PrettyMIDI(str(src))
    after = pretty_midi.PrettyMIDI(str(out))
    for name in ("Melody", "Pad"):
        a = next(i for i in before.instruments if i.name == name).notes
        b = next(i for i in after.instruments if i.name == name).notes
        assert len(a) == len(b)
        np.testing.assert_allclose([n.start for n in b], [n.start for n in a], atol=1e-3)
        np.testing.assert_allclose([n.end for n in b], [n.end for n in a], atol=1e-3)
        assert [n.pitch for n in b] == [n.pitch for n in a]
    # the output's beats are the music's: its tempo map follows the performance
    file_beats = after.get_beats()
    assert f_measure(file_beats, beats[:-1], 0.07) > 0.9
    assert len(after.get_tempo_changes()[1]) > 1  # one tempo per beat, not the source's single tempo
    assert mido.MidiFile(str(out)).ticks_per_beat == TempoMap.from_beats([0.5, 1.0], [True, False]).resolution
    # reading the output back: its notes now sit on its own grid
    assert read_song(out, melody_track="Melody").grid_source == "file"


def test_labels_shows_the_grid_and_tempo(tmp_path):
    notes, _, _ = performance(bars=8)
    src = write_performance(tmp_path / "perf.mid", notes)
    res = CliRunner().invoke(app, ["labels", str(src), "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["grid"] == "notes" and 95 <= report["tempo_bpm"] <= 115
    file_grid = json.loads(CliRunner().invoke(app, ["labels", str(src), "--json", "--grid", "file"]).stdout)
    assert file_grid["grid"] == "file" and file_grid["tempo_bpm"] == 100.0
    text = CliRunner().invoke(app, ["labels", str(src)]).stdout
    assert "inferred from the notes" in text


def test_bad_grid_choice(tmp_path):
    notes, _, _ = performance(bars=2)
    src = write_performance(tmp_path / "perf.mid", notes)
    res = CliRunner().invoke(app, ["labels", str(src), "--grid", "bars"])
    assert res.exit_code == 2 and "--grid" in res.output


@pytest.mark.parametrize("notes", [
    [(0, 480, 60)],  # one note
    [(0, 480, 60), (0, 480, 64), (0, 480, 67)],  # one chord
    [(0, 480, 60), (480 * 400, 480 * 401, 62)],  # two notes 400 beats apart
    [(i * 37, i * 37 + 30, 60 + i % 12) for i in range(200)],  # a fast run at no tempo of the file's
])
def test_inferred_grid_on_odd_files_keeps_every_note(tmp_path, notes):
    src = make_midi(tmp_path / "odd.mid", [Track("Melody", notes)])
    song = read_song(src, grid="notes")
    assert song.grid_source == "notes" and np.isfinite(song.tempo_bpm) and 40 <= song.tempo_bpm <= 240
    assert song.melody and all(0 <= n.start < n.end <= song.n_steps for n in song.melody)
    assert len(song.grid.bar_starts) >= 1 and song.grid.bar_starts[0] == 0


def test_one_beat_bars_get_beats_and_bars_from_the_notes(tmp_path):
    # on its grid, but marked 1/4 (as POP909's files are): no bar lines, so the grid is inferred; the music
    # starts with a one-beat pickup, so its downbeats are at beats 1, 5, 9, ... (120 bpm: 0.5 s + 2 s k)
    notes = [(RES * (1 + b * 4) + int(p * RES), RES * (1 + b * 4) + int((p + ln) * RES), ROOTS[b % 4] + d)
             for b in range(16) for p, ln, d in BAR] + [(0, RES // 2, 67), (RES // 2, RES, 65)]
    src = make_midi(tmp_path / "q14.mid", [Track("Melody", sorted(notes))], time_signatures=[(0, 1, 4)])
    song = read_song(src)
    assert song.grid_source == "notes"
    assert read_song(src, grid="file").grid_source == "file"
    assert f_measure(song.grid.step_times[song.grid.beat_starts], 0.5 * np.arange(66), 0.07) > 0.95
    downbeats = song.grid.step_times[[b for b in song.grid.bar_starts if b > 0]]
    assert f_measure(downbeats, 0.5 + 2.0 * np.arange(16), 0.07) > 0.9
    quantized_44 = make_midi(tmp_path / "q44.mid", [Track("Melody", sorted(notes))], time_signatures=[(0, 4, 4)])
    assert read_song(quantized_44).grid_source == "file"


@pytest.mark.pop909
def test_pop909_melody_gets_the_annotated_beats(pop909_dir, tmp_path):
    from harmonize.data.pop909 import read_beats
    from harmonize.end_to_end import write_raw_melody

    song_dir = pop909_dir / "057"  # a val song
    beats, flags, _ = read_beats(song_dir / "beat_midi.txt")
    raw = write_raw_melody(song_dir / "057.mid", tmp_path / "m.mid")
    file_grid = read_song(raw, grid="file").grid
    song = read_song(raw)
    assert song.grid_source == "notes"
    found = song.grid.step_times[song.grid.beat_starts]
    assert f_measure(found, beats) > 0.8 > f_measure(file_grid.step_times[file_grid.beat_starts], beats)
