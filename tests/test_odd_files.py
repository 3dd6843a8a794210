"""Odd but real MIDI shapes through ``stripe harmonize`` (tiny random model), plus output integrity.

Every file is generated here (mido through midi_factory): nothing to commit. Each one either harmonizes
(the input's own tracks copied message for message, a Chords track added, the grid as the file says) or
fails with one line ``error: <path>: <message>`` and exit code 2.
"""

from __future__ import annotations

import json
import shutil
import struct
import time
from pathlib import Path

import mido
import pytest
from midi_factory import RES, Track, make_midi, melody_file, song_file, steps
from tiny_models import tiny_harmonizer
from typer.testing import CliRunner

from harmonize.cli import app
from harmonize.io import midi as midi_module
from harmonize.io.midi import read_song

runner = CliRunner()


def harmonize(src: Path, out: Path, model_dir: Path, *flags):
    return runner.invoke(app, ["harmonize", str(src), "-o", str(out), "--model", str(model_dir), *map(str, flags)])


def assert_harmonized(src: Path, out: Path, result) -> list:
    """Exit 0; the input's tracks unchanged at the front of the output; Chords (+ Accompaniment) added."""
    assert result.exit_code == 0, result.output
    before = mido.MidiFile(str(src))
    after = mido.MidiFile(str(out))
    assert after.type == 1 and after.ticks_per_beat == before.ticks_per_beat
    for i, track in enumerate(before.tracks):
        assert list(after.tracks[i]) == list(track), f"track {i} changed"
    added = [t.name for t in after.tracks[len(before.tracks):]]
    assert added[0] == "Chords" and set(added) <= {"Chords", "Accompaniment"}
    assert any(m.type == "marker" for m in after.tracks[len(before.tracks)])
    return added


def assert_one_line_error(result, path: Path, message: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: "), result.stderr
    assert message in lines[0]


# ------------------------------------------------------------------------------------------ the shapes


def type0(p):
    melody = steps([(i * 4, i * 4 + 4, 72 + i % 5) for i in range(16)])
    piano = steps([(b * 16, b * 16 + 16, 48 + iv) for b in range(4) for iv in (0, 4, 7)])
    return make_midi(p, [Track("Melody", melody), Track("Piano", piano)], midi_type=0)


def many_tracks(p):
    tracks = [Track(f"Pad {i}", [(i * 7, i * 7 + RES, 40 + i % 20)], channel=i % 9) for i in range(120)]
    return make_midi(p, [*tracks, Track("Melody", steps([(i * 4, i * 4 + 4, 76 + i % 3) for i in range(16)]),
                                        channel=10)])


def drums_and_melody(p):
    drums = Track("Drums", steps([(i * 2, i * 2 + 1, 36 + (i % 2) * 2) for i in range(32)]), drums=True)
    return make_midi(p, [drums, Track("Lead", steps([(i * 4, i * 4 + 3, 67 + i % 5) for i in range(16)]))])


def no_tempo(p):
    return song_file(p, bars=4, tempos=[])


def seven_eight(p):
    # 7/8: 14 sixteenths per bar; quarter-note melody over 4 bars (28 eighths)
    return make_midi(p, [Track("Melody", steps([(i * 2, i * 2 + 2, 64 + i % 7) for i in range(28)]))],
                     time_signatures=[(0, 7, 8)])


def tempo_ramp(p):
    # an accelerando: a tempo event every 16th note, 60 -> 180 bpm over 8 bars
    ramp = [(k * RES // 4, 60.0 + 120.0 * k / 128) for k in range(128)]
    return song_file(p, bars=8, tempos=ramp)


def pickup(p):
    # a marked pickup: one 1/4 bar, then 4/4
    melody = steps([(0, 4, 67)] + [(4 + i * 4, 8 + i * 4, 72 + i % 4) for i in range(16)])
    return make_midi(p, [Track("Melody", melody)], time_signatures=[(0, 1, 4), (RES, 4, 4)])


def overlapping_melody(p):
    notes = []
    for i in range(16):  # each note overlaps the next by an eighth, and a held pedal note under them all
        notes.append((i * 4, i * 4 + 6, 72 + i % 5))
    notes.append((0, 64, 60))
    return make_midi(p, [Track("Melody", steps(notes))])


def thirty_minutes(p):
    # 30 minutes at 120 bpm: 900 bars of quarter notes
    return melody_file(p, pitches=[60 + (i * 7) % 12 + 12 for i in range(3600)], step_len=4)


def single_note(p):
    return make_midi(p, [Track("Melody", [(0, RES, 69)])])


def smpte(p):
    song_file(p, bars=4, resolution=40)
    data = bytearray(p.read_bytes())
    data[12:14] = struct.pack(">bB", -25, 40)  # 25 frames/s, 40 ticks per frame
    p.write_bytes(bytes(data))
    return p


SHAPES = {
    "type0": type0,
    "many_tracks": many_tracks,
    "drums_and_melody": drums_and_melody,
    "no_tempo": no_tempo,
    "seven_eight": seven_eight,
    "tempo_ramp": tempo_ramp,
    "pickup": pickup,
    "overlapping_melody": overlapping_melody,
    "single_note": single_note,
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_odd_shapes_harmonize(model_dir, tmp_path, shape):
    src = SHAPES[shape](tmp_path / f"{shape}.mid")
    out = tmp_path / "out.mid"
    assert_harmonized(src, out, harmonize(src, out, model_dir))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([src.name, out.name])  # no temp files


def test_shapes_read_as_the_file_says(tmp_path):
    """The grid follows each file's own meter and tempo map; the melody is what we expect."""
    song = read_song(seven_eight(tmp_path / "78.mid"))
    assert song.grid.bar_starts[:3] == [0, 14, 28] and song.grid.time_signatures[0][1:] == (7, 8)
    song = read_song(pickup(tmp_path / "pickup.mid"))
    assert song.grid.bar_starts[:3] == [0, 4, 20] and song.melody[0].pitch == 67
    song = read_song(no_tempo(tmp_path / "no_tempo.mid"))
    assert song.tempo_bpm == 120.0 and song.grid.step_times[4] == pytest.approx(0.5)
    song = read_song(tempo_ramp(tmp_path / "ramp.mid"))
    gaps = [b - a for a, b in zip(song.grid.step_times[:128], song.grid.step_times[1:129], strict=True)]
    assert all(x > y for x, y in zip(gaps, gaps[1:], strict=False))  # every step shorter than the last
    song = read_song(overlapping_melody(tmp_path / "overlap.mid"))
    # the top line (read_song's documented skyline): the pedal note under it is gone, no overlaps remain
    assert song.melody[0].pitch == 72 and 60 not in {n.pitch for n in song.melody}
    assert all(a.end <= b.start for a, b in zip(song.melody, song.melody[1:], strict=False))
    song = read_song(type0(tmp_path / "t0.mid"))
    assert song.melody[0].pitch == 72 and len(song.others) == 1
    song = read_song(drums_and_melody(tmp_path / "drums.mid"))
    assert song.melody_track == "Lead" and song.others == {}


def test_thirty_minute_song(model_dir, tmp_path):
    src = thirty_minutes(tmp_path / "long.mid")
    out = tmp_path / "out.mid"
    t0 = time.perf_counter()
    result = harmonize(src, out, model_dir, "--density", "0.1")
    elapsed = time.perf_counter() - t0
    assert_harmonized(src, out, result)
    assert elapsed < 60  # a few seconds with the tiny model on one core
    song = read_song(src)
    assert len(song.grid.bar_starts) == 900 and song.grid.step_times[-1] == pytest.approx(1800.0)


def test_smpte_division_is_a_clean_error(model_dir, tmp_path):
    src = smpte(tmp_path / "smpte.mid")
    out = tmp_path / "out.mid"
    assert_one_line_error(harmonize(src, out, model_dir), src, "SMPTE time division (25 frames/s x 40 ticks")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["smpte.mid"]


def test_music_too_long_is_a_clean_error(model_dir, tmp_path):
    # a corrupt delta time puts the last note ~65 hours in: refused before any grid is built
    src = make_midi(tmp_path / "long.mid", [Track("Melody", [(0, 96, 60), (9_000_000, 9_000_096, 62)])],
                    resolution=96)
    out = tmp_path / "out.mid"
    assert_one_line_error(harmonize(src, out, model_dir), src, "16th steps")
    assert not out.exists()


def test_last_bar_past_the_tick_limit_is_a_clean_error(model_dir, tmp_path):
    # resolution 32767: the file's last tick is under pretty_midi's 10^7 limit, the end of its bar is not
    src = make_midi(tmp_path / "fine.mid", [Track("Melody", [(0, 32767, 60), (9_990_000, 9_995_000, 62)])],
                    resolution=32767)
    assert_one_line_error(harmonize(src, tmp_path / "out.mid", model_dir), src, "tick limit (resolution 32767")


# -------------------------------------------------------------------------------------- output integrity


def test_failure_while_writing_leaves_nothing(model_dir, tmp_path, monkeypatch):
    """A crash in the middle of writing: no output, no temp file, input untouched (the writer is atomic)."""
    src = song_file(tmp_path / "in.mid", bars=4)
    before = src.read_bytes()
    out = tmp_path / "out.mid"
    real_save = midi_module._save_with_tracks
    seen = []

    def save_half_then_fail(mid, chunks, path):
        real_save(mid, chunks, path)  # the temp file is complete on disk ...
        with open(path, "r+b") as f:
            f.truncate(40)  # ... then half-written, and the disk is full
        seen.append(Path(path))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(midi_module, "_save_with_tracks", save_half_then_fail)
    result = harmonize(src, out, model_dir)
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert seen and seen[0].parent == tmp_path and seen[0] != out  # it did write, to a temp file beside out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mid"]
    assert src.read_bytes() == before


def test_failure_while_writing_keeps_the_old_output(model_dir, tmp_path, monkeypatch):
    """With --force over an existing output, a failed write leaves the old file exactly as it was."""
    src = song_file(tmp_path / "in.mid", bars=4)
    out = tmp_path / "out.mid"
    out.write_bytes(b"the previous result")

    def fail(mid, chunks, path):
        Path(path).write_bytes(b"partial")
        raise KeyboardInterrupt  # Ctrl-C mid-write

    monkeypatch.setattr(midi_module, "_save_with_tracks", fail)
    result = harmonize(src, out, model_dir, "--force")
    assert result.exit_code == 130
    assert out.read_bytes() == b"the previous result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mid", "out.mid"]


def test_candidates_refuse_before_writing_any(model_dir, tmp_path):
    """--candidates: if one of out-1..out-N exists, nothing at all is written (checked up front)."""
    src = song_file(tmp_path / "in.mid", bars=4)
    (tmp_path / "out-2.mid").write_bytes(b"keep")
    result = harmonize(src, tmp_path / "out.mid", model_dir, "--candidates", "3")
    assert_one_line_error(result, tmp_path / "out-2.mid", "already exists")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mid", "out-2.mid"]


def test_musicxml_output_checks(model_dir, tmp_path):
    """The lead sheet follows the same rules: an existing file or a missing folder stops the run first."""
    src = song_file(tmp_path / "in.mid", bars=4)
    xml = tmp_path / "lead.musicxml"
    xml.write_text("keep")
    result = harmonize(src, tmp_path / "out.mid", model_dir, "--musicxml", xml)
    assert_one_line_error(result, xml, "already exists")
    result = harmonize(src, tmp_path / "out.mid", model_dir, "--musicxml", tmp_path / "nope" / "lead.musicxml")
    assert_one_line_error(result, tmp_path / "nope" / "lead.musicxml", "does not exist")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mid", "lead.musicxml"]
    assert xml.read_text() == "keep"


def test_output_is_a_folder(model_dir, tmp_path):
    src = song_file(tmp_path / "in.mid", bars=4)
    (tmp_path / "dir.mid").mkdir()
    assert_one_line_error(harmonize(src, tmp_path / "dir.mid", model_dir), tmp_path / "dir.mid", "is a folder")


def test_input_through_another_path_is_not_overwritten(model_dir, tmp_path):
    """The input named through a symlink or ``..`` is still the input: refused without --force."""
    sub = tmp_path / "sub"
    sub.mkdir()
    src = song_file(tmp_path / "in.mid", bars=4)
    before = src.read_bytes()
    link = tmp_path / "link.mid"
    link.symlink_to(src)
    for out in (link, sub / ".." / "in.mid"):
        assert_one_line_error(harmonize(src, out, model_dir), out, "refusing to overwrite the input")
    assert src.read_bytes() == before


# ------------------------------------------------------------------------------------ broken models


def _truncate(p: Path):
    p.write_bytes(p.read_bytes()[:100])


def _flip_header(p: Path):
    data = bytearray(p.read_bytes())
    data[8:20] = b"{garbage!!!!"  # the JSON header right after the 8-byte length
    p.write_bytes(bytes(data))


def _edit_config(**changes):
    def edit(p: Path):
        cfg = json.loads((p.parent / "config.json").read_text())
        cfg.update(changes)
        (p.parent / "config.json").write_text(json.dumps(cfg))
    return edit


def _not_json(p: Path):
    (p.parent / "config.json").write_text("{not json")


def _swap_stages(p: Path):
    """An accompaniment model (128 outputs) where the chord model (109 classes) belongs."""
    root = p.parent.parent
    shutil.rmtree(root / "chord")
    shutil.copytree(root / "accompaniment", root / "chord")


BROKEN = {
    "truncated_weights": ("chord", _truncate, "cannot load model weights"),
    "corrupt_header": ("accompaniment", _flip_header, "cannot load model weights"),
    "shape_mismatch": ("chord", _edit_config(d_model=32), "cannot load model weights"),
    "unknown_config_key": ("accompaniment", _edit_config(colour="red"), "unknown config keys: colour"),
    "wrong_model_type": ("chord", _edit_config(model_type="GPT2"), "not a StructureTransformer checkpoint"),
    "config_not_json": ("accompaniment", _not_json, "unreadable"),
    "missing_weights": ("chord", lambda p: p.unlink(), "model weights not found"),
    "wrong_stage_outputs": ("chord", _swap_stages, "chord model has 128 outputs, expected 109"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_model_is_one_line(tmp_path, case):
    stage, damage, message = BROKEN[case]
    model = tiny_harmonizer(tmp_path / "model")
    damage(model / stage / "model.safetensors")
    src = song_file(tmp_path / "in.mid", bars=4)
    out = tmp_path / "out.mid"
    result = harmonize(src, out, model)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.output, result.stderr
    assert message in lines[0] and str(model) in lines[0]
    assert not out.exists()
