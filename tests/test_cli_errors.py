"""Issue 12's "exit 1" list: each of these used to end in ``internal error`` (exit 1) or a traceback; each is
now one line ``error: <what>: <problem>`` and exit 2, and nothing is written.

(The read-only output folder and the 240-/300-byte names are in ``test_outputs.py``.)
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cli_checks import one_line_error, run
from midi_factory import song_file

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures" / "pop909_mini"
TINY = ["--max-steps", "1", "--d-model", "16", "--layers", "1", "--heads", "2", "--bars", "4", "--device", "cpu"]


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """The preprocessing cache goes to tmp, never into the committed fixture folder."""
    monkeypatch.setenv("STRIPE_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def src(tmp_path):
    return song_file(tmp_path / "in.mid", bars=4)



def harmonize(src, model, *flags):
    return run("harmonize", src, "-o", Path(src).parent / "out.mid", "--model", model, *flags)


# ------------------------------------------------------------------------------------------- harmonize


def test_melody_track_with_a_non_ascii_digit(src, model_dir):
    one_line_error(harmonize(src, model_dir, "--melody-track", "²"), src, "no track '²'")


def test_5000_digit_bar_beat_in_chords(src, model_dir, tmp_path):
    chords = tmp_path / "chords.txt"
    chords.write_text("1:" + "9" * 5000 + " C\n")
    result = harmonize(src, model_dir, "--chords", chords)
    one_line_error(result, chords, "line 1: cannot read time")


def test_device_foo(src, model_dir, tmp_path):
    one_line_error(harmonize(src, model_dir, "--device", "foo"), "--device", "must be auto, cpu")
    one_line_error(run("train", "--data", FIXTURES, "--out", tmp_path / "run", *TINY, "--device", "foo"),
                   "--device", "must be auto, cpu")
    assert not (tmp_path / "run").exists() and not (tmp_path / "out.mid").exists()


def test_device_foo_real_process(src, model_dir):
    """The same through a real process: the exit status itself is 2."""
    proc = subprocess.run([sys.executable, "-m", "harmonize", "harmonize", str(src), "-o", str(src.parent / "o.mid"),
                           "--model", str(model_dir), "--device", "foo"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_empty_key_is_an_error_naming_the_option(src, model_dir):
    one_line_error(harmonize(src, model_dir, "--key", ""), "--key", "cannot read key ''")
    one_line_error(run("labels", src, "--key", ""), "--key", "cannot read key ''")


def _broken_copy(model_dir: Path, tmp_path: Path, edit) -> Path:
    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy)
    edit(copy)
    return copy


def _set_meta_list(folder: Path):
    path = folder / "chord" / "config.json"
    cfg = json.loads(path.read_text())
    cfg["meta"] = [1, 2]
    path.write_text(json.dumps(cfg))


@pytest.mark.parametrize("edit, file, message", [
    (lambda m: (m / "chord" / "config.json").write_text("[]"), "chord/config.json", "must be a JSON object"),
    (_set_meta_list, "chord/config.json", "meta must be a JSON object"),
    (lambda m: (m / "harmonizer.json").write_text("[]"), "harmonizer.json", "must be a JSON object"),
    (lambda m: (m / "harmonizer.json").write_text('{"decoding": {"gap": "x"}}'), "harmonizer.json",
     "decoding.gap must be an integer"),
    (lambda m: (m / "harmonizer.json").write_text('{"decoding": {"beat_window_overlap": 1.0}}'), "harmonizer.json",
     "decoding.beat_window_overlap must be"),
])
def test_model_json_of_the_wrong_shape(src, model_dir, tmp_path, edit, file, message):
    broken = _broken_copy(model_dir, tmp_path, edit)
    one_line_error(harmonize(src, broken), broken / file, message)
    assert not (tmp_path / "out.mid").exists()


def test_os_and_value_errors_from_input_are_one_line(src, model_dir, monkeypatch):
    """Whatever path an OSError takes, the top level shows it as one line naming the file, exit 2."""
    from harmonize import commands

    def denied(*a, **k):
        raise PermissionError(13, "Permission denied", "/some/file.mid")

    monkeypatch.setattr(commands, "run_harmonize", denied)
    one_line_error(harmonize(src, model_dir), "/some/file.mid", "Permission denied")
    monkeypatch.setattr(commands, "run_harmonize", lambda *a, **k: int("x" * 1000))
    result = harmonize(src, model_dir)
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1
    assert len(result.stderr) < 300


# ---------------------------------------------------------------------------------------- train / eval


def _data_with_split(tmp_path: Path, text: str) -> Path:
    data = tmp_path / "data"
    shutil.copytree(FIXTURES, data)
    (data / "split.json").write_text(text)
    return data


@pytest.mark.parametrize("text, message", [
    ("nope{", "unreadable split file"),
    ("[1, 2]", "must hold a JSON object"),
    ('{"train": 5, "val": "x"}', "must be a list of song numbers"),
    ('{"train": ["98", "²"], "val": [331, true]}', "must be a list of song numbers"),
])
def test_split_json_not_json_or_wrong_types(tmp_path, text, message):
    data = _data_with_split(tmp_path, text)
    out = tmp_path / "run"
    one_line_error(run("train", "--data", data, "--out", out, *TINY), data / "split.json", message)
    assert not out.exists()  # nothing written: a retry with good data is not refused
    one_line_error(run("eval", "--data", data, "--no-accompaniment"), data / "split.json", message)


def test_train_out_is_a_file(tmp_path):
    out = tmp_path / "run"
    out.write_text("mine")
    one_line_error(run("train", "--data", FIXTURES, "--out", out, *TINY), out, "is a file")
    assert out.read_text() == "mine"


@pytest.mark.parametrize("saved, message", [
    ('{"foo": 1}', "unknown keys: foo"),
    ("[]", "must hold a JSON object"),
    ("{", "unreadable run config"),
    ('{"lr": "fast"}', "lr must be a number"),
])
def test_resume_with_a_foreign_train_config(tmp_path, saved, message):
    out = tmp_path / "run"
    out.mkdir()
    (out / "train_config.json").write_text(saved)
    one_line_error(run("train", "--data", FIXTURES, "--out", out, "--resume", "--max-steps", "1"),
                   out / "train_config.json", message)
    assert sorted(p.name for p in out.iterdir()) == ["train_config.json"]


@pytest.mark.parametrize("cfg, message", [
    ({"epochs": [1]}, "epochs must be an integer"),
    ({"lr": "fast"}, "lr must be a number"),
    ({"causal": "yes"}, "causal must be true or false"),
    ({"d_ff": 10**12}, "d_ff must be an integer in 1..65536"),
])
def test_config_with_wrong_types(tmp_path, cfg, message):
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(cfg))
    out = tmp_path / "run"
    one_line_error(run("train", "--data", FIXTURES, "--out", out, "--config", path, *TINY), path, message)
    assert not out.exists()
    path.write_text("[1]")
    one_line_error(run("train", "--data", FIXTURES, "--out", out, "--config", path, *TINY), path, "not list")


def test_d_model_zero(tmp_path):
    out = tmp_path / "run"
    flags = [f for f in TINY]
    flags[flags.index("--d-model") + 1] = "0"
    one_line_error(run("train", "--data", FIXTURES, "--out", out, *flags), "--d-model", "d_model must be an integer in 1..4096")
    assert not out.exists()


def test_resume_never_deletes_files_stripe_did_not_write(tmp_path):
    out = tmp_path / "run"
    assert run("train", "--data", FIXTURES, "--out", out, *TINY).exit_code == 0
    shutil.rmtree(out / "checkpoint")
    mine = out / "final" / "notes.txt"
    mine.write_text("mine")
    one_line_error(run("train", "--data", FIXTURES, "--out", out, "--resume", *TINY), out / "final",
                   "holds files stripe did not write")
    assert mine.read_text() == "mine"
    mine.unlink()
    before = (out / "final" / "model.safetensors").read_bytes()
    one_line_error(run("train", "--data", FIXTURES, "--out", out, "--resume", *TINY), out,
                   "no checkpoint to resume from")
    assert (out / "final" / "model.safetensors").read_bytes() == before
