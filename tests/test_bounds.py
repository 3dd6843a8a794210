"""Issue 12 "Bounds": oversized chord files and MIDI files refused early and cheaply, linear chord-file
parsing, short error lines, BOM chord files, and added tracks written even when the input uses all 16
channels. (``benchmarks/input_bounds.py`` measures the refusals at full size.)"""

from __future__ import annotations

import time
from pathlib import Path

import mido
import numpy as np
import pytest
from midi_factory import Track, make_midi, song_file, steps
from typer.testing import CliRunner

from harmonize.cli import app
from harmonize.errors import StripeError
from harmonize.io import midi as midi_module
from harmonize.io.chordfile import MAX_BYTES, read_chord_file
from harmonize.io.midi import count_events, read_song
from harmonize.song import Grid

FIXTURES = Path(__file__).parent / "fixtures" / "pop909_mini"
runner = CliRunner()


def long_grid(bars: int) -> Grid:
    n = 16 * bars
    return Grid(step_times=np.arange(n + 1) * 0.125, bar_starts=list(range(0, n, 16)),
                beat_starts=list(range(0, n, 4)), time_signatures=[(0, 4, 4)])


# ------------------------------------------------------------------------------------------ chord files


def test_chord_file_over_the_cap_is_refused_from_its_size(tmp_path):
    path = tmp_path / "big.txt"
    path.write_bytes(b"0 C\n" * (MAX_BYTES // 4 + 1))
    t0 = time.perf_counter()
    with pytest.raises(StripeError, match="over the 2 MB limit"):
        read_chord_file(path, long_grid(8))
    assert time.perf_counter() - t0 < 1.0


def test_chord_file_parsing_is_linear(tmp_path):
    """~1.5 MB of BAR:BEAT lines on a 6000-bar song: the old per-line scan of every beat took minutes."""
    grid = long_grid(6000)
    lines = [f"{bar}:{beat} Am7\n" for bar in range(1, 6001) for beat in range(1, 5) for _ in range(5)]  # 120k lines, five per beat (the last wins)
    path = tmp_path / "long.txt"
    path.write_text("".join(lines))
    assert path.stat().st_size < MAX_BYTES
    t0 = time.perf_counter()
    spans = read_chord_file(path, grid)
    assert time.perf_counter() - t0 < 10.0
    assert len(spans) == 24_000 and spans[-1].end == grid.n_steps


@pytest.mark.parametrize("line", ["9" * 10_000 + " C", "1:1 " + "Q" * 10_000, "1:1 C " + "x" * 10_000])
def test_error_lines_quote_at_most_about_80_characters(tmp_path, line):
    path = tmp_path / "chords.txt"
    path.write_text("1:1 C\n" + line + "\n")
    with pytest.raises(StripeError) as err:
        read_chord_file(path, long_grid(8))
    assert "line 2" in err.value.message and len(err.value.message) < 260


def test_chord_file_with_a_utf8_bom(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes("\ufeff1:1 C\n2:1 G7\n".encode())
    spans = read_chord_file(path, long_grid(4))
    assert len(spans) == 2 and spans[0].start == 0 and spans[1].start == 16


# ------------------------------------------------------------------------------------------ MIDI files


def many_notes_midi(path: Path, notes: int) -> Path:
    body = bytearray(b"\x00\x90\x3c\x40") + b"\x01\x3c\x00\x00\x3c\x40" * (notes - 1) + b"\x01\x3c\x00\x00\xff\x2f\x00"
    header = b"MThd\x00\x00\x00\x06\x00\x00\x00\x01\x01\xe0"
    path.write_bytes(header + b"MTrk" + len(body).to_bytes(4, "big") + bytes(body))
    return path


def test_too_many_notes_refused_before_parsing(tmp_path, monkeypatch):
    import pretty_midi

    path = many_notes_midi(tmp_path / "many.mid", midi_module.MAX_NOTES + 10)

    def no_parse(*a, **k):
        raise AssertionError("parsed")

    monkeypatch.setattr(pretty_midi, "PrettyMIDI", no_parse)
    t0 = time.perf_counter()
    with pytest.raises(StripeError, match="notes, over the limit"):
        read_song(path)
    assert time.perf_counter() - t0 < 3.0


def test_too_many_events_refused_before_parsing(tmp_path):
    path = song_file(tmp_path / "s.mid", bars=4)
    with pytest.raises(StripeError, match="MIDI events, over the limit"):
        midi_module._load_pretty_midi(path, midi_module.MAX_BYTES, max_events=10)


def test_event_count_matches_mido(tmp_path):
    files = sorted(FIXTURES.glob("*/*.mid")) + [song_file(tmp_path / "s.mid", bars=8),
                                                  many_notes_midi(tmp_path / "m.mid", 50)]
    for path in files:
        mid = mido.MidiFile(str(path))
        notes = sum(1 for t in mid.tracks for m in t if m.type == "note_on" and m.velocity)
        assert count_events(path.read_bytes()) == (notes, sum(len(t) for t in mid.tracks)), path
    assert count_events(b"garbage") == (0, 0)
    # a chunk longer than the file, then a data byte with no status: the scan stops, the parser reports it
    assert count_events(b"MThd\x00\x00\x00\x06\x00\x00\x00\x01\x01\xe0MTrk\x00\x00\xff\xff\x00\x3c") == (0, 0)


# ------------------------------------------------------------------------------------ all 16 channels


def _harmonize(src: Path, out: Path, model_dir: Path):
    return runner.invoke(app, ["harmonize", str(src), "-o", str(out), "--model", str(model_dir)])


def test_all_16_channels_with_notes_still_get_the_added_tracks(model_dir, tmp_path):
    tracks = [Track("Melody", steps([(s, s + 2, 72 + s % 5) for s in range(0, 64, 2)]), channel=0)]
    tracks += [Track(f"T{c}", steps([(0, 16, 40 + c)] * (1 + c % 3)), channel=c, drums=c == 9) for c in range(1, 16)]
    src = make_midi(tmp_path / "full.mid", tracks)
    out = tmp_path / "out.mid"
    result = _harmonize(src, out, model_dir)
    assert result.exit_code == 0, result.output
    after = mido.MidiFile(str(out))
    added = after.tracks[len(mido.MidiFile(str(src)).tracks):]
    assert [t.name for t in added] == ["Chords", "Accompaniment"]
    chord_notes = [m for m in added[0] if m.type == "note_on" and m.velocity]
    assert chord_notes and {m.channel for m in chord_notes} != {9}
    assert not any(m.type == "program_change" for t in added for m in t)  # the shared channel keeps its sound


def test_a_channel_without_notes_is_reused(model_dir, tmp_path):
    tracks = [Track("Melody", steps([(s, s + 2, 72) for s in range(0, 64, 2)]), channel=0)]
    tracks += [Track(f"T{c}", steps([(0, 16, 40)]), channel=c) for c in range(1, 16) if c not in (9, 7)]
    src = make_midi(tmp_path / "quiet.mid", tracks + [Track("Empty", [], channel=7)])
    out = tmp_path / "out.mid"
    assert _harmonize(src, out, model_dir).exit_code == 0
    added = mido.MidiFile(str(out)).tracks[-2:]
    assert {m.channel for t in added for m in t if hasattr(m, "channel")} == {7}


def test_empty_key_is_an_error_naming_the_option(tmp_path):
    src = song_file(tmp_path / "in.mid", bars=4)
    result = runner.invoke(app, ["labels", str(src), "--key", ""])
    assert result.exit_code == 2 and result.stderr.startswith("error: --key: ")
