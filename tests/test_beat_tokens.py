"""The per-beat chord stage: beat tokens, the key frame, the model, training through the CLI, harmonizing."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from harmonize.beat_tokens import (
    FEATURE_SETS,
    N_BASS,
    N_FEATURES,
    N_OUT,
    bar_windows,
    beat_features,
    encode_beats,
    to_absolute,
    to_relative,
)
from harmonize.chords import N_CLASSES, Chord, parse_chord
from harmonize.song import ChordSpan, Grid, Key, Note

FIXTURES = Path(__file__).parent / "fixtures" / "pop909_mini"


def grid(n_bars: int = 2, beats_per_bar: int = 4) -> Grid:
    n = n_bars * beats_per_bar
    flags = [i % beats_per_bar == 0 for i in range(n + 1)]
    return Grid.from_beats(np.arange(n + 1) * 0.5, flags)


def test_beat_tokens_say_what_the_melody_does_where():
    g = grid()  # 2 bars of 4 beats, 4 steps a beat
    melody = [Note(4, 6, 64), Note(6, 8, 67), Note(8, 16, 60)]  # beat 1: E G; beats 2-3: C held
    f = beat_features(melody, g, Key(0, "major"))
    assert f.shape == (8, N_FEATURES)
    dur, onset, low, high = f[:, :12], f[:, 12:24], f[:, 24:36], f[:, 36:48]
    rest = f[:, 48]
    assert dur[1, 4] == dur[1, 7] == 0.5 and onset[1, [4, 7]].tolist() == [1, 1]
    assert low[1].argmax() == 4 and high[1].argmax() == 7
    assert dur[2, 0] == dur[3, 0] == 1 and onset[2, 0] == 1 and onset[3, 0] == 0  # held, not restruck
    assert rest[0] == 1 and rest[1] == 0 and rest[4] == 1
    beat_in_bar = f[:, 50:58].argmax(1)
    assert beat_in_bar.tolist() == [0, 1, 2, 3, 0, 1, 2, 3]
    before, after = f[:, -4], f[:, -3]
    assert before.tolist() == [1, 0, 0, 0, 0, 0, 0, 0]
    assert after.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]


def test_tokens_are_key_relative():
    g = grid()
    melody = [Note(0, 4, 62), Note(4, 12, 66), Note(12, 20, 69)]
    a = beat_features(melody, g, Key(2, "major"))
    b = beat_features([Note(n.start, n.end, n.pitch + 5) for n in melody], g, Key(7, "major"))
    reg = 49  # the register feature moves with the transposition; everything else is the same
    np.testing.assert_array_equal(np.delete(a, reg, 1), np.delete(b, reg, 1))
    assert beat_features(melody, g, Key(2, "minor"))[0, -1] == 1  # the mode flag


def test_line_features_add_the_beat_start_and_the_leaps():
    g = grid()  # 2 bars of 4 beats, 4 steps a beat
    # beat 0: C D E by step then a leap up to A (beat 1, held into beat 2), G by step, rest, then C an octave up
    melody = [Note(0, 1, 60), Note(1, 2, 62), Note(2, 4, 64), Note(4, 10, 69), Note(10, 12, 67), Note(16, 20, 72)]
    base = beat_features(melody, g, Key(0, "major"))
    line = beat_features(melody, g, Key(0, "major"), feature_set="line")
    assert line.shape == (8, FEATURE_SETS["line"]) == (8, N_FEATURES + 24)
    np.testing.assert_array_equal(line[:, :N_FEATURES], base)  # appended: a base model reads the first columns
    at_beat, leap = line[:, N_FEATURES:N_FEATURES + 12], line[:, N_FEATURES + 12:]
    assert at_beat[0].nonzero()[0].tolist() == [0] and at_beat[2].nonzero()[0].tolist() == [9]  # A held over
    assert at_beat[3].sum() == 0  # a rest on the beat
    # E and A are joined by a leap (a fourth); G, reached by step, leaves by a leap to the C (a fourth)
    assert leap[0].nonzero()[0].tolist() == [4] and leap[0, 4] == 0.5  # C and D move by step: not leaps
    assert leap[1, 9] == 1 and leap[2, 9] == 0.5 and leap[2, 7] == 0.5
    assert leap[4, 0] == 1
    # key-relative like the rest: in D major the same tune a tone up gives the same tokens but the register
    up = beat_features([Note(n.start, n.end, n.pitch + 2) for n in melody], g, Key(2, "major"), feature_set="line")
    np.testing.assert_array_equal(np.delete(up, 49, 1), np.delete(line, 49, 1))
    with pytest.raises(ValueError, match="feature set"):
        beat_features(melody, g, Key(0, "major"), feature_set="lines")


def test_key_relative_round_trip():
    classes = np.arange(N_CLASSES)
    for tonic in range(12):
        rel = to_relative(classes, tonic)
        assert sorted(rel.tolist()) == classes.tolist() and rel[0] == 0  # a permutation; N stays N
        assert to_relative(np.array([Chord(tonic, "maj").class_index]), tonic)[0] == Chord(0, "maj").class_index
        scores = np.eye(N_CLASSES)[rel]  # row c: a one-hot over relative classes at class c's relative index
        np.testing.assert_array_equal(to_absolute(scores, tonic).argmax(1), classes)


def test_targets_chord_bass_and_chroma():
    g = grid(1)
    chords = [ChordSpan(0, 6, parse_chord("G:maj")), ChordSpan(6, 16, parse_chord("C:maj"))]
    piano = [Note(0, 8, 43), Note(0, 8, 59), Note(8, 12, 48)]
    s = encode_beats([Note(0, 16, 67)], g, Key(7, "major"), chords, piano)
    # beat 1 has G for 2 steps and C for 2: the earlier wins; then C = IV of G
    assert s.chord.tolist() == [Chord(0, "maj").class_index, Chord(0, "maj").class_index,
                                Chord(5, "maj").class_index, Chord(5, "maj").class_index]
    assert s.bass.tolist() == [0, 0, 5, N_BASS - 1]  # G, G, C relative to G; silent
    assert s.chroma[0, [0, 4]].tolist() == [1, 1] and s.chroma[3].sum() == 0
    blind = encode_beats([Note(0, 16, 67)], g, Key(7, "major"))
    assert (blind.chord == -100).all() and (blind.bass == -100).all()


def test_bar_windows_cover_the_song():
    bar_of_beat = np.repeat(np.arange(10), 4)
    assert bar_windows(bar_of_beat, 16, 8) == [(0, 40)]
    w = bar_windows(bar_of_beat, 4, 3)
    assert w[0] == (0, 16) and w[-1][1] == 40 and all(hi - lo == 16 for lo, hi in w)


def tiny_beat_stage(folder: Path, context: str = "time", beat_features: str = "base") -> Path:
    from harmonize.model.checkpoint import save_model
    from harmonize.model.transformer import StructureTransformer
    from harmonize.train import TrainConfig, model_config_for, stage_meta

    cfg = TrainConfig(stage="chord-beat", context=context, d_model=16, n_heads=2, n_layers=1, d_ff=32,
                      pe="ropepool", causal=False, bars=4, beat_features=beat_features)
    torch.manual_seed(0)
    save_model(StructureTransformer(model_config_for(cfg)), folder, extra=stage_meta(cfg))
    return folder


def test_beat_model_shape_and_strict_load(tmp_path):
    from harmonize.errors import StripeError
    from harmonize.model.checkpoint import load_model

    folder = tiny_beat_stage(tmp_path / "chord")
    model = load_model(folder)
    y = model(torch.randn(1, 10, N_FEATURES), torch.arange(10.0)[None, :, None])
    assert y.shape == (1, 10, N_OUT)
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["meta"]["kind"] == "beat" and cfg["meta"]["stage"] == "chord"
    cfg["d_model"] = 32
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(StripeError, match="shape"):
        load_model(folder)


def test_harmonize_with_a_line_features_model_and_refuse_a_mismatch(tmp_path):
    from harmonize.errors import StripeError
    from harmonize.pipeline import HarmonizeOptions, Harmonizer
    from harmonize.song import Song

    tiny = __import__("tiny_models").tiny_harmonizer(tmp_path / "h")
    tiny_beat_stage(tiny / "chord", beat_features="line")
    h = Harmonizer.load(str(tiny))
    assert h.chord.feature_set == "line" and h.chord.model.config.n_in == FEATURE_SETS["line"]
    g = grid(3)
    melody = [Note(4 * i, 4 * i + 4, 60 + 3 * (i % 3)) for i in range(2, 12)]
    out = h(Song("t", g, melody), HarmonizeOptions())
    assert out.chords[-1].end == g.n_steps
    config = tiny / "chord" / "config.json"
    cfg = json.loads(config.read_text())
    for meta, message in (({"feature_set": "base"}, "takes 97 features"), ({"feature_set": "x" * 100}, "feature_set")):
        config.write_text(json.dumps(cfg | {"meta": cfg["meta"] | meta}))
        with pytest.raises(StripeError, match=message) as err:
            Harmonizer.load(str(tiny))
        assert len(str(err.value)) < 300 and "\n" not in str(err.value)


@pytest.mark.parametrize("context", ["time", "rep"])
def test_harmonize_with_a_tiny_beat_model(tmp_path, context):
    from harmonize.pipeline import HarmonizeOptions, Harmonizer
    from harmonize.song import Song

    tiny = __import__("tiny_models").tiny_harmonizer(tmp_path / "h")
    tiny_beat_stage(tiny / "chord", context)  # replace the per-step chord stage
    h = Harmonizer.load(str(tiny))
    assert h.chord.kind == "beat"
    g = grid(3)
    melody = [Note(4 * i, 4 * i + 4, 60 + (i % 5)) for i in range(2, 12)]
    out = h(Song("t", g, melody), HarmonizeOptions())
    assert out.chords[0].start == 0 and out.chords[-1].end == g.n_steps
    assert all(s.end > s.start for s in out.chords) and out.accompaniment is not None
    logp = h.chord_beat_log_probs(Song("t", g, melody), out.key)
    assert logp.shape == (12, N_CLASSES)
    np.testing.assert_allclose(np.exp(logp).sum(1), 1.0, atol=1e-4)


def test_train_chord_beat_through_the_cli_and_resume(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from harmonize.cli import app
    from harmonize.pipeline import Harmonizer

    monkeypatch.setenv("STRIPE_CACHE", str(tmp_path / "cache"))  # not inside the fixture folder
    out = tmp_path / "run"
    args = ["train", "--data", str(FIXTURES), "--stage", "chord-beat", "--out", str(out), "--context", "time",
            "--d-model", "16", "--heads", "2", "--layers", "1", "--d-ff", "32", "--bars", "4", "--hop-bars", "2",
            "--max-steps", "3", "--batch-size", "2", "--bidirectional", "--threads", "1", "--checkpoint-every", "1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    meta = json.loads((out / "final" / "config.json").read_text())["meta"]
    assert meta["kind"] == "beat" and "val_beat_accuracy" in meta["val"]
    assert (out / "beats-train.npz").exists()
    tiny = __import__("tiny_models").tiny_harmonizer(tmp_path / "h")
    for name in ("config.json", "model.safetensors"):  # the trained stage replaces the tiny chord stage
        (tiny / "chord" / name).write_bytes((out / "final" / name).read_bytes())
    h = Harmonizer.load(str(tiny))
    assert h.chord.kind == "beat" and h.chord.model.config.n_out == N_OUT
    config = json.loads((out / "train_config.json").read_text())
    config["max_steps"] = 5
    (out / "train_config.json").write_text(json.dumps(config))
    result = CliRunner().invoke(app, ["train", "--out", str(out), "--data", str(FIXTURES), "--resume"])
    assert result.exit_code == 0, result.output
    assert "done: 5 steps" in result.output


@pytest.mark.parametrize("chord_track", ["chords", "MIDI 01"])
def test_pop909_cl_chords_land_on_the_pop909_grid(tmp_path, chord_track):
    from midi_factory import RES, Track, make_midi

    from harmonize.data.pop909_cl import read_cl_chords
    from harmonize.errors import StripeError

    # POP909 file at 120 bpm (a beat = 0.5 s) starting one beat late; the CL file re-times the same
    # notes to start at tick 0 at 100 bpm, and writes C (root position) then A minor as block chords
    melody = [(RES * (1 + i), RES * (2 + i), 60 + 2 * i) for i in range(8)]
    piano = [(RES * (1 + i), RES * (2 + i), 48) for i in range(8)]
    orig = make_midi(tmp_path / "001.mid", [Track("MELODY", melody), Track("PIANO", piano)])
    shift = [(s - RES, e - RES, p) for s, e, p in melody + piano]
    blocks = [(0, 4 * RES, p) for p in (48, 52, 55)] + [(4 * RES, 8 * RES, p) for p in (57, 60, 64)]
    cl = make_midi(tmp_path / "cl.mid", [Track("piano", shift), Track(chord_track, blocks)], tempos=[(0, 100.0)])
    grid = Grid.from_beats(np.arange(11) * 0.5)
    spans = read_cl_chords(cl, orig, grid)
    assert [(s.start, s.end, s.chord) for s in spans] == [(4, 20, Chord(0, "maj")), (20, 36, Chord(9, "min"))]
    # another arrangement (under half of the notes pair up) is refused, not read at the wrong times
    other = [(s, e, p + 1) for s, e, p in shift[:10]] + shift[10:]
    cl2 = make_midi(tmp_path / "cl2.mid", [Track("piano", other), Track(chord_track, blocks)], tempos=[(0, 100.0)])
    with pytest.raises(StripeError, match="notes match"):
        read_cl_chords(cl2, orig, grid)


def test_cl_block_chords_are_rooted_on_the_bass():
    from harmonize.data.pop909_cl import block_chord

    cmaj9 = block_chord([48, 52, 55, 59, 62])  # C E G B D: on C (a maj9, class maj7), not Em7
    assert cmaj9.root == 0 and cmaj9.class_quality == "maj7"
    assert block_chord([45, 60, 64]) == Chord(9, "min")
    assert block_chord([52, 55, 60]) == Chord(0, "maj")  # E G C: no chord on E sounds; the template finds C


def test_window_jitter_cuts_the_songs_elsewhere_each_epoch_and_covers_them():
    from harmonize.data.dataset import BeatWindowDataset

    melody = [Note(s, s + 4, 60 + s % 12) for s in range(0, 40 * 16, 4)]
    song = encode_beats(melody, grid(40), Key(0, "major"))
    fixed = BeatWindowDataset([song], bars=8, hop_bars=4)
    before = list(fixed.index)
    fixed.set_epoch(3)
    assert fixed.index == before  # no jitter: the same windows every epoch
    jit = BeatWindowDataset([song], bars=8, hop_bars=4, jitter=True, seed=5)
    starts = set()
    for epoch in range(6):
        jit.set_epoch(epoch)
        again = BeatWindowDataset([song], bars=8, hop_bars=4, jitter=True, seed=5)
        again.set_epoch(epoch)
        assert again.index == jit.index  # seeded: a resumed run cuts the same windows
        covered = np.zeros(song.n_beats, bool)
        for _, lo, hi in jit.index:
            covered[lo:hi] = True
        assert covered.all() and jit.index[0][1] == 0 and jit.index[-1][2] == song.n_beats
        starts |= {lo for _, lo, _ in jit.index[1:]}
    assert len(starts) > len({lo for _, lo, _ in before[1:]})  # other cut points than the fixed windows


def test_bar_silence_takes_the_melody_out_of_whole_bars_and_keeps_the_targets():
    from harmonize.beat_tokens import silence_beats
    from harmonize.data.dataset import BeatWindowDataset

    g = grid(8)
    melody = [Note(4 * i, 4 * i + 4, 60 + 2 * (i % 4)) for i in range(32)]
    chords = [ChordSpan(0, 64, parse_chord("C:maj")), ChordSpan(64, 128, parse_chord("G:maj"))]
    song = encode_beats(melody, g, Key(0, "major"), chords, feature_set="line")
    silent = np.zeros(song.n_beats, bool)
    silent[4:8] = True
    quiet = silence_beats(song.features, silent)
    rest = beat_features([n for n in melody if not 16 <= n.start < 32], g, Key(0, "major"), feature_set="line")
    # a silenced bar reads as a bar of rest (its place in the song kept; the repetition flag aside)
    np.testing.assert_array_equal(np.delete(quiet[4:8], N_FEATURES - 2, 1), np.delete(rest[4:8], N_FEATURES - 2, 1))
    np.testing.assert_array_equal(quiet[~silent], song.features[~silent])

    def silenced_bars(ds, epoch):
        ds.set_epoch(epoch)
        item = ds[0]
        assert torch.equal(item["target"], torch.from_numpy(song.chord))  # the chords stay the targets
        is_silent = item["x"][:, 48] == 1  # the rest column
        return sorted({int(b) for b in song.bar_of_beat[is_silent.numpy()]})

    ds = BeatWindowDataset([song], bars=8, hop_bars=8, seed=3, bar_silence=0.5)
    first = silenced_bars(ds, 0)
    assert 0 < len(first) < 8 and silenced_bars(ds, 0) == first  # seeded: the same draw again
    assert any(silenced_bars(ds, e) != first for e in range(1, 5))  # another epoch, other bars
    assert silenced_bars(BeatWindowDataset([song], bars=8, hop_bars=8), 0) == []  # off by default
    assert silenced_bars(BeatWindowDataset([song], bars=8, hop_bars=8, bar_silence=0.9, seed=1), 0) != []


def test_an_ensemble_of_chord_stages_averages_their_posteriors(tmp_path):
    from harmonize.errors import StripeError
    from harmonize.pipeline import Harmonizer
    from harmonize.song import Song

    tiny = __import__("tiny_models").tiny_harmonizer(tmp_path / "h")
    tiny_beat_stage(tiny / "chord")
    single = Harmonizer.load(str(tiny))
    assert len(single.chord_members) == 1
    torch.manual_seed(1)
    tiny_beat_stage(tiny / "chord-2", beat_features="line")  # members may read different tokens
    both = Harmonizer.load(str(tiny))
    assert len(both.chord_members) == 2 and both.stage_sources["chord-2"] == both.stage_sources["chord"]
    g = grid(6)
    song = Song("t", g, [Note(4 * i, 4 * i + 3, 60 + 3 * (i % 4)) for i in range(1, 22)])
    key = Key(2, "major")
    alone = [Harmonizer.load(str(tiny / name)).chord_beat_log_probs(song, key) for name in ("chord", "chord-2")]
    mixed = both.chord_beat_log_probs(song, key)
    np.testing.assert_allclose(np.exp(mixed).sum(1), 1.0, atol=1e-6)
    geometric = np.exp((alone[0] + alone[1]) / 2)
    np.testing.assert_allclose(np.exp(mixed), geometric / geometric.sum(1, keepdims=True), atol=1e-6)
    np.testing.assert_allclose(single.chord_beat_log_probs(song, key), alone[0])  # one member: as before
    # beat_window_overlap 0: the 4-bar windows of a 12-bar song side by side (3) instead of every 2 bars (5)
    long_song = Song("t", grid(12), [Note(4 * i, 4 * i + 3, 60 + 3 * (i % 4)) for i in range(1, 46)])
    calls = []
    forward = single.chord.model.forward
    single.chord.model.forward = lambda x, pos, mask=None: calls.append(x.shape[1]) or forward(x, pos, mask)
    overlapping = single.chord_beat_log_probs(long_song, key)
    assert calls == [16] * 5
    calls.clear()
    single.decoding = single.decoding | {"beat_window_overlap": 0.0}
    side_by_side = single.chord_beat_log_probs(long_song, key)
    assert calls == [16] * 3
    assert side_by_side.shape == overlapping.shape and not np.allclose(side_by_side, overlapping)
    # a folder naming one chord stage runs it alone, whatever the bundled model's members
    assert len(Harmonizer.load(str(tiny / "chord-2")).chord_members) == 1
    # only per-beat stages average: a per-step chord-2/ is a one-line error naming it
    cfg = json.loads((tiny / "chord-2" / "config.json").read_text())
    (tiny / "chord-2" / "config.json").write_text(json.dumps(cfg | {"meta": cfg["meta"] | {"kind": "step"}}))
    with pytest.raises(StripeError, match="per-beat chord stages only") as err:
        Harmonizer.load(str(tiny))
    assert "chord-2" in str(err.value)


def test_fill_rests_adds_only_notes_sounding_while_the_melody_rests():
    from harmonize.song import Note, fill_rests

    melody = [Note(0, 4, 60), Note(8, 12, 62)]
    other = [Note(2, 6, 70), Note(4, 8, 71), Note(12, 16, 72), Note(5, 9, 73), Note(0, 2, 74), Note(16, 18, 75)]
    line = fill_rests(melody, other)
    assert [(n.start, n.end, n.pitch) for n in line] == [(0, 4, 60), (4, 8, 71), (8, 12, 62), (12, 16, 72),
                                                         (16, 18, 75)]
    assert fill_rests(melody, []) == melody and fill_rests([], other[:2]) == sorted(other[:2], key=lambda n: n.start)
    # a long melody note hides a bridge note that starts after a later, shorter melody note began
    assert fill_rests([Note(0, 20, 60), Note(2, 3, 64)], [Note(4, 6, 70)]) == [Note(0, 20, 60), Note(2, 3, 64)]


def test_bridge_fill_adds_training_copies_only(monkeypatch, tmp_path):
    from harmonize.train import TrainConfig, load_beat_songs

    monkeypatch.setenv("STRIPE_CACHE", str(tmp_path / "cache"))
    plain = {s.name: s for s in load_beat_songs(TrainConfig(data=str(FIXTURES), stage="chord-beat"), "train")}
    filled = {s.name: s for s in load_beat_songs(TrainConfig(data=str(FIXTURES), stage="chord-beat", bridge_fill=True),
                                                 "train")}
    copies = sorted(n for n in filled if n.endswith("+bridge"))
    assert copies and sorted(set(filled) - set(copies)) == sorted(plain)
    for name in copies:
        original, copy = filled[name.removesuffix("+bridge")], filled[name]
        assert copy.n_beats == original.n_beats
        if copy.key == original.key:  # same frame: the same chord targets, more beats with melody
            assert (copy.chord == original.chord).all()
        assert not np.array_equal(copy.features, original.features)
    val = TrainConfig(data=str(FIXTURES), stage="chord-beat", bridge_fill=True)
    assert [s.name for s in load_beat_songs(val, "val")] == [s.name for s in load_beat_songs(
        TrainConfig(data=str(FIXTURES), stage="chord-beat"), "val")]


def test_keep_epochs_saves_every_epoch_and_pick_epoch_scores_them(monkeypatch, tmp_path):
    import subprocess
    import sys

    from typer.testing import CliRunner

    from harmonize.cli import app

    monkeypatch.setenv("STRIPE_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    args = ["train", "--data", str(FIXTURES), "--stage", "chord-beat", "--out", str(out), "--context", "time",
            "--d-model", "16", "--heads", "2", "--layers", "1", "--d-ff", "32", "--bars", "4", "--hop-bars", "4",
            "--epochs", "2", "--batch-size", "4", "--bidirectional", "--threads", "1", "--keep-epochs"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (out / "epochs").iterdir()) == ["01", "02"]
    for n in (1, 2):
        meta = json.loads((out / "epochs" / f"{n:02d}" / "config.json").read_text())["meta"]
        assert meta["val"]["epoch"] == n and "val_beat_accuracy" in meta["val"]
    root = Path(__file__).resolve().parents[1]
    env = {**__import__("os").environ, "STRIPE_CACHE": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-m", "benchmarks.pick_epoch", "--run", str(out), "--data", str(FIXTURES),
                           "--partner", str(out / "best")], capture_output=True, text=True, cwd=root, env=env)
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("| epoch") or line.startswith("| best/")]
    assert [r.split("|")[1].strip() for r in rows] == ["epoch 1", "epoch 2", "best/"]
    assert "most accurate end to end:" in done.stdout
    empty = subprocess.run([sys.executable, "-m", "benchmarks.pick_epoch", "--run", str(tmp_path), "--data",
                            str(FIXTURES)], capture_output=True, text=True, cwd=root, env=env)
    assert empty.returncode == 2 and "--keep-epochs" in empty.stderr and "Traceback" not in empty.stderr
