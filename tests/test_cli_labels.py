"""``stripe`` CLI shell and ``stripe labels``; the --chords file format."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from midi_factory import Track, make_midi, song_file, steps
from typer.testing import CliRunner

from harmonize.cli import app, rep_letter
from harmonize.errors import StripeError
from harmonize.io.chordfile import read_chord_file
from harmonize.io.midi import read_song

runner = CliRunner()


def test_help_lists_the_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in ("harmonize", "train", "eval", "labels"):
        assert name in result.stdout
    assert runner.invoke(app, ["--version"]).stdout.startswith("stripe ")


def test_importing_the_cli_loads_nothing_heavy():
    code = ("import sys, harmonize.cli; "
            "print([m for m in ('torch', 'numpy', 'pretty_midi', 'music21', 'matplotlib', 'mido') "
            "if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_python_dash_m_harmonize():
    out = subprocess.run([sys.executable, "-m", "harmonize", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "labels" in out.stdout


def test_labels_table(tmp_path):
    path = song_file(tmp_path / "s.mid", bars=4, time_signatures=[(0, 4, 4)])
    result = runner.invoke(app, ["labels", str(path)])
    assert result.exit_code == 0, result.output
    assert "melody track: Melody" in result.stdout
    assert "C major (estimated)" in result.stdout and "track:Piano" in result.stdout
    assert "4/4" in result.stdout and "1:F" in result.stdout


def test_labels_json_bar_by_bar(tmp_path):
    # 3/4 then 6/8 with a tempo change; bar 3 repeats bar 1; the piano holds C, F, G, C
    res = 480
    mel = [(0, 4, 72), (4, 8, 74), (8, 12, 76), (12, 24, 79), (24, 28, 72), (28, 32, 74), (32, 36, 76),
           (36, 42, 77), (42, 48, 76)]
    piano = [(b * 12, b * 12 + 12, r + iv) for b, r in enumerate([48, 53, 55, 48]) for iv in (0, 4, 7)]
    path = make_midi(tmp_path / "m.mid", [Track("Vocal", steps(mel)), Track("Keys", steps(piano))],
                     tempos=[(0, 90.0), (36 * res // 4, 120.0)], time_signatures=[(0, 3, 4), (36 * res // 4, 6, 8)])
    result = runner.invoke(app, ["labels", str(path), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)  # stdout holds the JSON and nothing else
    assert data["melody_track"] == "Vocal" and data["chord_source"] == "track:Keys"
    assert data["key"] == "C major"
    bars = data["bars"]
    assert [b["meter"] for b in bars] == ["3/4", "3/4", "3/4", "6/8"]
    assert [b["tempo_bpm"] for b in bars] == [90, 90, 90, 120]
    assert [b["rep"] for b in bars] == ["A", "B", "A", "C"]
    assert [[c["chord"] for c in b["chords"]] for b in bars] == [["C"], ["F"], ["G"], ["C"]]
    assert bars[1]["start_s"] == pytest.approx(2.0)


def test_labels_options_key_chords_melody_track(tmp_path):
    path = song_file(tmp_path / "s.mid", bars=4)
    chords = tmp_path / "chords.txt"
    chords.write_text("# my chords\n1:1 Am\n\n2:3 D:7   # seconds or BAR:BEAT\n4.0 G\n")
    result = runner.invoke(app, ["labels", str(path), "--json", "--key", "A minor", "--chords", str(chords),
                                 "--melody-track", "0"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["key"], data["key_source"]) == ("A minor", "given")
    assert data["chord_source"] == f"file:{chords}"
    assert [[(c["beat"], c["chord"]) for c in b["chords"]] for b in data["bars"]] == [
        [(1, "Am")], [(1, "Am"), (3, "D7")], [(1, "G")], [(1, "G")]]


def test_labels_plot(tmp_path):
    path = song_file(tmp_path / "s.mid", bars=2)
    out = tmp_path / "labels.png"
    result = runner.invoke(app, ["labels", str(path), "--plot", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_labels_plot_without_matplotlib(tmp_path, monkeypatch):
    path = song_file(tmp_path / "s.mid", bars=2)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    result = runner.invoke(app, ["labels", str(path), "--plot", str(tmp_path / "x.png")])
    assert result.exit_code == 2
    assert "pip install 'stripe-harmonizer[plot]'" in result.stderr


def test_bad_key_and_bad_track(tmp_path):
    path = song_file(tmp_path / "s.mid", bars=2)
    result = runner.invoke(app, ["labels", str(path), "--key", "H minor"])
    assert result.exit_code == 2 and result.stderr.startswith("error: --key: cannot read key")
    result = runner.invoke(app, ["labels", str(path), "--melody-track", "Flute"])
    assert result.exit_code == 2 and "'Melody'" in result.stderr and "'Piano'" in result.stderr


def test_internal_errors_are_one_line(tmp_path, monkeypatch):
    import harmonize.structure

    def boom(*args, **kwargs):
        raise RuntimeError("kaput")

    monkeypatch.setattr(harmonize.structure, "label_song", boom)
    result = runner.invoke(app, ["labels", str(song_file(tmp_path / "s.mid", bars=1))])
    assert result.exit_code == 1
    assert result.stderr.strip().count("\n") == 0 and "STRIPE_DEBUG=1" in result.stderr
    assert "internal error: RuntimeError: kaput" in result.stderr


def test_rep_letters():
    assert [rep_letter(i) for i in (0, 1, 25, 26, 27, 701, 702)] == ["A", "B", "Z", "AA", "AB", "ZZ", "AAA"]


# ------------------------------------------------------------------------------------------ chord files


def test_chord_file_times_and_spans(tmp_path):
    grid = read_song(song_file(tmp_path / "s.mid", bars=4, time_signatures=[(0, 4, 4)])).grid  # 120 bpm
    f = tmp_path / "c.txt"
    f.write_text("0.5 C\n2:2 A:min7\n# comment\n\n3.99 G7/B\n4:4 N\n")
    spans = read_chord_file(f, grid)
    assert [(s.start, s.end, s.chord.symbol) for s in spans] == [
        (0, 4, "N"), (4, 20, "C:maj"), (20, 32, "A:min7"), (32, 60, "G:7/B"), (60, 64, "N")]


@pytest.mark.parametrize("text,message", [
    ("1:1 C\nbanana\n", "line 2: expected 'TIME CHORD'"),
    ("1:1 C\n2:1 Hmaj\n", "line 2: not a chord symbol"),
    ("1:1 C\n2:1 C:weird\n", "line 2: unknown chord quality"),
    ("9:1 C\n", "line 1: bar 9 is outside the song"),
    ("1:5 C\n", "line 1: bar 1 has 4 beats, not 5"),
    ("2:1 C\n1:1 F\n", "line 2: time 1:1 is before"),
    ("1:x C\n", "line 1: cannot read time"),
    ("99.0 C\n", "line 1: time 99 s is after the end"),
    ("# nothing\n", "no chords in the file"),
])
def test_chord_file_errors_name_the_line(tmp_path, text, message):
    grid = read_song(song_file(tmp_path / "s.mid", bars=4)).grid
    f = tmp_path / "c.txt"
    f.write_text(text)
    with pytest.raises(StripeError) as err:
        read_chord_file(f, grid)
    assert err.value.path == str(f) and err.value.message.startswith(message)


def test_ctrl_c_and_debug_mode(tmp_path, monkeypatch):
    import harmonize.structure

    path = str(song_file(tmp_path / "s.mid", bars=1))

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(harmonize.structure, "label_song", interrupted)
    result = runner.invoke(app, ["labels", path])
    assert result.exit_code == 130 and result.stderr.strip() == "error: interrupted"

    def boom(*args, **kwargs):
        raise RuntimeError("kaput")

    monkeypatch.setattr(harmonize.structure, "label_song", boom)
    monkeypatch.setenv("STRIPE_DEBUG", "1")
    result = runner.invoke(app, ["labels", path])
    assert isinstance(result.exception, RuntimeError)  # the traceback is there for whoever debugs
