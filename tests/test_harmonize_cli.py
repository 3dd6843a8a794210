"""``stripe harmonize`` end to end with a tiny random model: tracks, flags, reproducibility, safety."""

import json

import mido
import pretty_midi
import pytest
from midi_factory import song_file
from typer.testing import CliRunner

from harmonize.cli import app

runner = CliRunner()


@pytest.fixture
def melody(tmp_path):
    return song_file(tmp_path / "in.mid", bars=8)


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def notes_of(path):
    pm = pretty_midi.PrettyMIDI(str(path))
    return {i.name: [(round(n.start, 6), round(n.end, 6), n.pitch, n.velocity) for n in i.notes]
            for i in pm.instruments}


def test_adds_chords_and_accompaniment_and_keeps_input(model_dir, melody, tmp_path):
    out = tmp_path / "out.mid"
    result = run("harmonize", melody, "-o", out, "--model", model_dir, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)[0]
    assert summary["n_chords"] >= 1 and summary["n_accompaniment_notes"] > 0
    before, after = notes_of(melody), notes_of(out)
    for name, notes in before.items():
        assert after[name] == notes  # the input's own tracks are untouched
    assert after["Chords"] and after["Accompaniment"]
    melody_low = min(p for _, _, p, _ in before["Melody"])
    assert all(p < melody_low for _, _, p, _ in after["Chords"])
    markers = [m for t in mido.MidiFile(str(out)).tracks for m in t if m.type == "marker"]
    assert len(markers) == summary["n_chords"]


def test_same_seed_same_file_and_candidates(model_dir, melody, tmp_path):
    a, b = tmp_path / "a.mid", tmp_path / "b.mid"
    for out in (a, b):
        assert run("harmonize", melody, "-o", out, "--model", model_dir, "--temperature", "1.5",
                   "--seed", "3").exit_code == 0
    assert a.read_bytes() == b.read_bytes()
    res = run("harmonize", melody, "-o", tmp_path / "c.mid", "--model", model_dir, "--candidates", "3")
    assert res.exit_code == 0, res.output
    assert all((tmp_path / f"c-{i}.mid").exists() for i in (1, 2, 3))


def test_chords_only_and_musicxml(model_dir, melody, tmp_path):
    out, xml = tmp_path / "out.mid", tmp_path / "lead.musicxml"
    res = run("harmonize", melody, "-o", out, "--model", model_dir, "--chords-only", "--musicxml", xml)
    assert res.exit_code == 0, res.output
    assert "Accompaniment" not in notes_of(out) and "Chords" in notes_of(out)
    assert xml.exists() and xml.stat().st_size > 0


def test_user_chords_are_used(model_dir, melody, tmp_path):
    chords = tmp_path / "chords.txt"
    chords.write_text("# bar:beat chord\n1:1 Am\n3:1 F\n5:1 G7\n")
    out = tmp_path / "out.mid"
    res = run("harmonize", melody, "-o", out, "--model", model_dir, "--chords", chords, "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)[0]["chords"] == ["A:min", "F:maj", "G:7"]


def test_key_flag(model_dir, melody, tmp_path):
    res = run("harmonize", melody, "-o", tmp_path / "o.mid", "--model", model_dir, "--key", "Eb major", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)[0]["key"] == "Eb major"


def test_never_overwrites_without_force(model_dir, melody, tmp_path):
    out = tmp_path / "out.mid"
    out.write_bytes(b"precious")
    res = run("harmonize", melody, "-o", out, "--model", model_dir)
    assert res.exit_code == 2 and "exists" in res.output
    assert out.read_bytes() == b"precious"
    assert run("harmonize", melody, "-o", out, "--model", model_dir, "--force").exit_code == 0
    assert out.read_bytes() != b"precious"
    res = run("harmonize", melody, "-o", melody, "--model", model_dir)
    assert res.exit_code == 2 and "input" in res.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["-o", "{tmp}/missing/out.mid"], "does not exist"),
        (["-o", "{tmp}/o.mid", "--model", "{tmp}/nope"], "no such model"),
        (["-o", "{tmp}/o.mid", "--key", "H major"], "key"),
        (["-o", "{tmp}/o.mid", "--device", "cuda"], None),
    ],
)
def test_bad_flags_give_one_line(model_dir, melody, tmp_path, args, message):
    import torch

    if "cuda" in args and torch.cuda.is_available():
        pytest.skip("a GPU is present")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if "--model" not in args:
        args += ["--model", str(model_dir)]
    res = run("harmonize", melody, *args)
    assert res.exit_code == 2
    lines = [x for x in res.output.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in res.output
    if message:
        assert message in lines[0].lower()


def test_density_changes_the_number_of_accompaniment_notes(model_dir, melody, tmp_path):
    counts = []
    for density in ("0.2", "5"):
        res = run("harmonize", melody, "-o", tmp_path / f"d{density}.mid", "--model", model_dir,
                  "--density", density, "--json")
        assert res.exit_code == 0, res.output
        counts.append(json.loads(res.stdout)[0]["n_accompaniment_notes"])
    assert counts[0] < counts[1]
