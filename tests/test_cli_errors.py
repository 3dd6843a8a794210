"""Each input that once ended in exit 1 (an internal error) now gets one line naming the file or option,
exit code 2, no traceback (issue 12's list)."""

import json
import shutil
from pathlib import Path

import pytest
from midi_factory import melody_file
from tiny_models import tiny_harmonizer
from typer.testing import CliRunner

from harmonize.cli import app

runner = CliRunner()
FIXTURES = Path(__file__).parent / "fixtures" / "pop909_mini"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return tiny_harmonizer(tmp_path_factory.mktemp("tiny") / "harmonizer")


@pytest.fixture
def data(tmp_path):
    """A copy of the fixture data set: training writes its cache into the data folder."""
    return Path(shutil.copytree(FIXTURES, tmp_path / "pop909"))


@pytest.fixture
def melody(tmp_path):
    return melody_file(tmp_path / "in.mid")


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def one_line(res, *needles):
    assert res.exit_code == 2, (res.exit_code, res.output)
    assert "Traceback" not in res.output and "internal error" not in res.output, res.output
    lines = [line for line in res.stderr.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1, res.stderr  # (train prints its status line first)
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_300_char_name(melody, model_dir, tmp_path):
    one_line(run("harmonize", melody, "-o", tmp_path / ("x" * 300 + ".mid"), "--model", model_dir),
             "file name too long")


def test_240_char_name_is_fine(melody, model_dir, tmp_path):
    out = tmp_path / ("y" * 236 + ".mid")
    res = run("harmonize", melody, "-o", out, "--model", model_dir)
    assert res.exit_code == 0, res.output
    assert out.exists()


def test_odd_melody_track(melody, model_dir, tmp_path):
    one_line(run("harmonize", melody, "-o", tmp_path / "o.mid", "--model", model_dir, "--melody-track", "²"),
             "²")


def test_5000_digit_bar_beat(melody, model_dir, tmp_path):
    chords = tmp_path / "c.txt"
    chords.write_text("9" * 5000 + ":1 C\n")
    res = run("harmonize", melody, "-o", tmp_path / "o.mid", "--model", model_dir, "--chords", chords)
    one_line(res, str(chords), "line 1")
    assert len(res.stderr) < 400


def test_unknown_device(melody, model_dir, tmp_path):
    one_line(run("harmonize", melody, "-o", tmp_path / "o.mid", "--model", model_dir, "--device", "foo"),
             "--device")


@pytest.mark.parametrize("damage,where", [
    (lambda m: (m / "chord" / "config.json").write_text("[]"), "config.json"),
    (lambda m: _edit(m / "chord" / "config.json", meta=[1, 2]), "config.json"),
    (lambda m: (m / "harmonizer.json").write_text("[]"), "harmonizer.json"),
    (lambda m: (m / "harmonizer.json").write_text('{"decoding": {"gap": "x"}}'), "harmonizer.json"),
])
def test_broken_model_json(melody, model_dir, tmp_path, damage, where):
    broken = tmp_path / "model"
    shutil.copytree(model_dir, broken)
    damage(broken)
    one_line(run("harmonize", melody, "-o", tmp_path / "o.mid", "--model", broken), where)


def _edit(path: Path, **changes):
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize("text", ["{not json", '{"train": "abc", "val": [1], "test": []}', "[]"])
def test_bad_split_json(tmp_path, text):
    data = tmp_path / "data"
    shutil.copytree(FIXTURES, data)
    (data / "split.json").write_text(text)
    one_line(run("train", "--data", data, "--out", tmp_path / "run", "--stage", "chord", "--max-steps", "1"),
             "split.json")


def test_train_out_is_a_file(tmp_path, data):
    out = tmp_path / "run"
    out.write_text("a file")
    one_line(run("train", "--data", data, "--out", out, "--stage", "chord", "--max-steps", "1"), str(out))


def test_resume_with_a_foreign_train_config(tmp_path, data):
    out = tmp_path / "run"
    out.mkdir()
    (out / "train_config.json").write_text(json.dumps({"colour": "blue"}))
    one_line(run("train", "--out", out, "--resume", "--data", data), "train_config.json")


def test_config_file_with_wrong_types(tmp_path, data):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"d_model": "big", "lr": [1]}))
    one_line(run("train", "--data", data, "--out", tmp_path / "run", "--config", cfg, "--max-steps", "1"),
             "cfg.json")


def test_d_model_zero(tmp_path, data):
    one_line(run("train", "--data", data, "--out", tmp_path / "run", "--d-model", "0", "--max-steps", "1"),
             "--d-model")
    assert not (tmp_path / "run").exists()  # nothing written before the config validates
