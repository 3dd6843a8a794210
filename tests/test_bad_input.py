"""Odd and broken input through ``stripe labels``: a clear one-line error naming the file, never a traceback."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from midi_factory import RES, Track, make_midi, song_file, steps
from typer.testing import CliRunner

from harmonize.cli import app

runner = CliRunner()


def _no_notes(p):
    return make_midi(p, [Track("Melody", [])])


def _drums(p):
    return make_midi(p, [Track("Drums", steps([(i, i + 1, 36) for i in range(16)]), drums=True)])


def _zero_length(p):
    return make_midi(p, [Track("Melody", [(i * RES, i * RES, 60 + i) for i in range(8)])])


def _not_midi(p):
    p.write_text("this is a text file, not a MIDI file\n")
    return p


def _truncated(p):
    data = song_file(p).read_bytes()
    p.write_bytes(data[: len(data) // 2])
    return p


def _empty(p):
    p.write_bytes(b"")
    return p


def _huge(p):
    with open(p, "wb") as f:
        f.truncate(21 * 2**20)  # sparse: the size check comes before any parsing
    return p


def _fast_tempo(p):
    return song_file(p, tempos=[(0, 120.0), (RES, 5000.0)])


def _slow_tempo(p):
    return song_file(p, tempos=[(0, 4.0)])


def _folder(p):
    p.mkdir()
    return p


def _missing(p):
    return p


CASES = {
    "not_midi": (_not_midi, "not a readable MIDI file"),
    "truncated": (_truncated, "not a readable MIDI file"),
    "empty": (_empty, "empty file"),
    "no_notes": (_no_notes, "MIDI file has no notes"),
    "drums_only": (_drums, "only drum tracks"),
    "zero_length": (_zero_length, "every note has zero length"),
    "huge": (_huge, "file is 21.0 MB, over the 20 MB limit"),
    "fast_tempo": (_fast_tempo, "tempo 5000 bpm at 0.50 s is outside 5-1000 bpm"),
    "slow_tempo": (_slow_tempo, "tempo 4 bpm at 0.00 s is outside 5-1000 bpm"),
    "folder": (_folder, "is a folder, not a MIDI file"),
    "missing": (_missing, "no such file"),
}


def _assert_one_line_error(exit_code: int, stderr: str, path, message: str):
    assert exit_code == 2
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0] == f"error: {path}: {message}" or lines[0].startswith(f"error: {path}: {message}")


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_midi_gives_one_line(tmp_path, case):
    make, message = CASES[case]
    path = make(tmp_path / f"{case}.mid")
    result = runner.invoke(app, ["labels", str(path)])
    _assert_one_line_error(result.exit_code, result.stderr, path, message)
    assert result.stdout == ""


@pytest.mark.parametrize("case", ["not_midi", "zero_length", "missing"])
def test_real_stderr_through_a_subprocess(tmp_path, case):
    make, message = CASES[case]
    path = make(tmp_path / f"{case}.mid")
    out = subprocess.run([sys.executable, "-m", "harmonize", "labels", str(path)],
                         capture_output=True, text=True, timeout=60)
    _assert_one_line_error(out.returncode, out.stderr, path, message)


def test_corrupt_chords_file(tmp_path):
    midi = song_file(tmp_path / "s.mid")
    chords = tmp_path / "chords.txt"
    chords.write_text("1:1 C\n2:1 G\n3:1 Xyz7\n")
    result = runner.invoke(app, ["labels", str(midi), "--chords", str(chords)])
    _assert_one_line_error(result.exit_code, result.stderr, chords, "line 3: not a chord symbol")
    chords.write_bytes(b"\xff\xfe\x00\x81 binary")
    result = runner.invoke(app, ["labels", str(midi), "--chords", str(chords)])
    _assert_one_line_error(result.exit_code, result.stderr, chords, "not a text file")


def test_hundreds_of_tracks_work_and_fast(tmp_path):
    tracks = [Track(f"Strings {i}", [(i * 10, i * 10 + RES, 40 + i % 30)]) for i in range(400)]
    tracks.append(Track("Melody", steps([(i * 4, i * 4 + 4, 70 + i % 5) for i in range(16)])))
    path = make_midi(tmp_path / "many.mid", tracks)
    t0 = time.perf_counter()
    result = runner.invoke(app, ["labels", str(path), "--json"])
    elapsed = time.perf_counter() - t0
    assert result.exit_code == 0, result.output
    assert '"melody_track": "Melody"' in result.stdout
    assert elapsed < 10  # measured well under a second on 1 core; generous for shared CI machines


def test_too_many_tracks_is_a_clear_error(tmp_path):
    tracks = [Track(f"t{i}", [(i, i + RES, 60)], channel=i % 9) for i in range(1030)]
    path = make_midi(tmp_path / "toomany.mid", tracks)
    result = runner.invoke(app, ["labels", str(path)])
    _assert_one_line_error(result.exit_code, result.stderr, path, "1030 tracks, over the limit of 1024")
