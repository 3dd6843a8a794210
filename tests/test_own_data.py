"""Training on a plain folder of MIDI files (``--data FOLDER``), ``stripe data check`` and ``--dry-run``."""

from __future__ import annotations

import json

import pytest
from midi_factory import melody_file, song_folder
from safetensors.torch import load_file
from typer.testing import CliRunner

from harmonize.cli import app
from harmonize.data.folder_data import (
    is_pop909_layout,
    load_folder_split,
    midi_files,
    read_folder_song,
    split_files,
)
from harmonize.errors import StripeError
from harmonize.io.midi import read_song
from harmonize.structure import label_song

runner = CliRunner()
TINY = ["--d-model", "16", "--heads", "2", "--layers", "1", "--bars", "4", "--batch-size", "4",
        "--max-steps", "4", "--epochs", "2", "--warmup-steps", "2", "--threads", "1", "--device", "cpu"]


@pytest.fixture
def folder(tmp_path):
    return song_folder(tmp_path / "songs")


def test_tiny_model_trains_on_a_folder_and_skips_the_broken_file(folder, tmp_path):
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", "--data", str(folder), "--out", str(run), *TINY])
    assert result.exit_code == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "broken.mid" in warnings[0] and "not a readable MIDI file" in warnings[0]
    weights = load_file(str(run / "final" / "model.safetensors"))
    assert weights and all(t.isfinite().all() for t in weights.values())
    log = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    assert log[0]["step"] == 1 and "val_loss" in log[-1]


def test_layout_detection_files_and_split(folder, tmp_path):
    assert not is_pop909_layout(folder)
    files = midi_files(folder)
    rel = [p.relative_to(folder).as_posix() for p in files]
    assert rel == sorted(rel) and "set/deeper/song0.mid" in rel and len(rel) == 8
    split = split_files(folder, files, seed=0)
    assert sorted(split["train"] + split["val"]) == sorted(files) and len(split["val"]) == 1
    assert split == split_files(folder, files, seed=0)  # seeded
    assert any(split_files(folder, files, seed=s)["val"] != split["val"] for s in range(1, 6))
    (folder / "split.json").write_text(json.dumps({"train": ["lead.mid", "set/song1.mid"], "val": ["set/song3.mid"]}))
    loaded = load_folder_split(folder, "train")
    assert [s.name for s in loaded.songs] == ["lead", "song1"] and not loaded.skipped
    (folder / "split.json").write_text(json.dumps({"train": ["../outside.mid"]}))
    with pytest.raises(StripeError, match="inside the folder"):
        load_folder_split(folder, "train")


def test_loader_reads_what_stripe_labels_shows(folder):
    path = folder / "set" / "song1.mid"
    song = read_folder_song(path)
    labels = label_song(read_song(path))
    assert labels.chord_source.startswith("track:") and song.chords == labels.chords
    assert song.piano and song.melody and song.key is not None
    lead = read_folder_song(folder / "lead.mid")  # chords from the sibling lead.chords.txt
    assert [str(c.chord) for c in lead.chords] == [str(c) for c in _chords("C", "G7", "Am", "F")]
    shown = json.loads(runner.invoke(app, ["labels", str(folder / "lead.mid"), "--json"]).stdout)
    assert shown["chord_source"].endswith("lead.chords.txt")
    assert [c["chord"] for b in shown["bars"][:4] for c in b["chords"]] == ["C", "G7", "Am", "F"]
    melody_file(folder / "bare.mid")
    with pytest.raises(StripeError, match="no chord track"):
        read_folder_song(folder / "bare.mid")


def _chords(*names):
    from harmonize.chords import parse_chord

    return [parse_chord(n) for n in names]


def test_data_check_table_and_json(folder):
    result = runner.invoke(app, ["data", "check", str(folder)])
    assert result.exit_code == 0, result.stderr
    assert "songs" in result.stdout and "bars" in result.stdout and "chords" in result.stdout
    assert "broken.mid: not a readable MIDI file" in result.stdout
    report = json.loads(runner.invoke(app, ["data", "check", str(folder), "--json"]).stdout)
    total = {k: sum(s[k] for s in report["splits"].values()) for k in ("files", "songs", "skipped", "bars")}
    assert total["files"] == 8 and total["songs"] == 7 and total["skipped"] == 1
    assert total["bars"] == sum(read_folder_song(p).n_bars for p in midi_files(folder) if p.name != "broken.mid")
    assert report["skipped"][0]["file"].endswith("broken.mid")


def test_dry_run_writes_nothing_and_empty_folder_is_an_error(folder, tmp_path):
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", "--data", str(folder), "--out", str(run), "--dry-run"])
    assert result.exit_code == 0 and "skipped" in result.stdout and not run.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    result = runner.invoke(app, ["data", "check", str(empty)])
    assert result.exit_code == 2 and result.stderr.startswith("error:") and "no MIDI files" in result.stderr


@pytest.mark.parametrize("flag", [["--precision", "bf16"], ["--compile"], ["--precision", "fp16"]])
def test_cuda_only_options_refused_on_cpu(folder, tmp_path, flag):
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", "--data", str(folder), "--out", str(run), *TINY, *flag])
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith("error: --") and not run.exists()


BEAT = ["--stage", "chord-beat", "--bidirectional", "--context", "time"]


def test_per_beat_chord_stage_trains_on_a_folder_and_harmonizes(folder, tmp_path):
    """The bundled kind of chord stage (one token per beat) trains on your own folder too."""
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", "--data", str(folder), "--out", str(run), *BEAT, *TINY])
    assert result.exit_code == 0, result.stderr
    config = json.loads((run / "final" / "config.json").read_text())
    assert config["meta"]["kind"] == "beat" and config["n_out"] > config["n_in"] > 0
    log = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    vals = [r for r in log if "val_beat_accuracy" in r]
    assert 0.0 <= vals[-1]["val_beat_accuracy"] <= 1.0
    # best/ holds the model of the best epoch-end validation, loadable like final/
    best = json.loads((run / "best" / "config.json").read_text())["meta"]["val"]
    assert best in vals and best["val_beat_accuracy"] >= vals[0]["val_beat_accuracy"]


def test_best_is_the_best_validation_so_far():
    from harmonize.train import is_best

    acc = [{"val_loss": 2.0, "val_beat_accuracy": a} for a in (0.30, 0.35, 0.35, 0.33, 0.36)]
    assert [is_best(acc[:i + 1]) for i in range(len(acc))] == [True, True, False, False, True]
    loss = [{"val_loss": v} for v in (2.0, 1.5, 1.7)]  # other stages: the lowest val loss
    assert [is_best(loss[:i + 1]) for i in range(len(loss))] == [True, True, False]
    assert not is_best([{"step": 3, "loss": 1.0}])  # a step record is no validation


def test_extra_data_joins_the_training_songs(folder, tmp_path):
    from harmonize.train import TrainConfig, load_beat_songs

    other = song_folder(tmp_path / "more")
    alone = load_beat_songs(TrainConfig(data=str(folder), stage="chord-beat"), "train")
    both = load_beat_songs(TrainConfig(data=str(folder), extra_data=str(other), stage="chord-beat"), "train")
    assert len(both) == 2 * len(alone) > 0
    thrice = load_beat_songs(TrainConfig(data=str(folder), extra_data=str(other), extra_repeat=3,
                                         stage="chord-beat"), "train")
    assert len(thrice) == 4 * len(alone)
    val = load_beat_songs(TrainConfig(data=str(folder), extra_data=str(other), extra_repeat=3,
                                      stage="chord-beat"), "val")
    assert len(val) == 2 * len(load_beat_songs(TrainConfig(data=str(folder), stage="chord-beat"), "val"))
    assert all((s.chord >= 0).any() for s in both)  # chords read from both folders


def test_init_starts_from_a_trained_model_and_checks_the_architecture(folder, tmp_path):
    first = tmp_path / "first"
    assert runner.invoke(app, ["train", "--data", str(folder), "--out", str(first), *BEAT, *TINY]).exit_code == 0
    start = load_file(str(first / "final" / "model.safetensors"))

    # one step at a learning rate of 1e-9 barely moves the weights: equal to --init's means it started there
    second = tmp_path / "second"
    tiny_lr = [*TINY, "--max-steps", "1", "--warmup-steps", "0", "--lr", "1e-9"]  # later flags win
    result = runner.invoke(app, ["train", "--data", str(folder), "--out", str(second), *BEAT, *tiny_lr,
                                 "--init", str(first / "final")])
    assert result.exit_code == 0, result.stderr
    tuned = load_file(str(second / "final" / "model.safetensors"))
    assert tuned.keys() == start.keys()
    assert max((tuned[k] - start[k]).abs().max().item() for k in start) < 1e-6
    # and without --init the same run starts elsewhere (the check above can fail)
    fresh = tmp_path / "fresh"
    assert runner.invoke(app, ["train", "--data", str(folder), "--out", str(fresh), *BEAT, *tiny_lr,
                               "--seed", "1"]).exit_code == 0
    other = load_file(str(fresh / "final" / "model.safetensors"))
    assert max((other[k] - start[k]).abs().max().item() for k in start) > 1e-3

    bad = runner.invoke(app, ["train", "--data", str(folder), "--out", str(tmp_path / "bad"), *BEAT, *TINY,
                              "--d-model", "32", "--init", str(first / "final")])
    assert bad.exit_code == 2 and "--init" in bad.stderr and "d_model" in bad.stderr
    assert not (tmp_path / "bad").exists()  # refused before the run folder is made
    # a plain input projection grows into the centre tap of a --local-kernel convolution: the same model
    widened = tmp_path / "widened"
    result = runner.invoke(app, ["train", "--data", str(folder), "--out", str(widened), *BEAT, *tiny_lr,
                                 "--local-kernel", "3", "--init", str(first / "final")])
    assert result.exit_code == 0, result.stderr
    conv = load_file(str(widened / "final" / "model.safetensors"))
    assert conv["inp.weight"].shape == (*start["inp.weight"].shape, 3)
    assert (conv["inp.weight"][..., 1] - start["inp.weight"]).abs().max() < 1e-6
    assert conv["inp.weight"][..., [0, 2]].abs().max() < 1e-6
    for flags, message in ((["--local-kernel", "4"], "odd"), (["--local-kernel", "3", "--stage", "chord"], "--bidirectional"),
                           (["--block-kernel", "2"], "odd"), (["--block-kernel", "3", "--stage", "chord"], "--bidirectional"),
                           (["--beat-features", "lines"], "beat_features"), (["--bar-silence", "0.95"], "bar_silence"),
                           (["--bridge-fill"], "chord-beat"), ([*BEAT, "--bridge-fill"], "POP909-layout")):
        bad = runner.invoke(app, ["train", "--data", str(folder), "--out", str(tmp_path / "bad3"), *TINY, *flags])
        assert bad.exit_code == 2 and message in bad.stderr and "Traceback" not in bad.stderr, bad.stderr
    # --block-kernel adds a depthwise convolution to every block, recorded in the saved config
    blocked = tmp_path / "blocked"
    result = runner.invoke(app, ["train", "--data", str(folder), "--out", str(blocked), *BEAT, *tiny_lr,
                                 "--block-kernel", "3", "--beat-features", "line", "--bar-silence", "0.3"])
    assert result.exit_code == 0, result.stderr
    saved = json.loads((blocked / "final" / "config.json").read_text())
    assert saved["block_kernel"] == 3 and saved["meta"]["feature_set"] == "line" and saved["n_in"] == 97
    assert saved["meta"]["train_config"]["bar_silence"] == 0.3
    assert load_file(str(blocked / "final" / "model.safetensors"))["blocks.0.conv.depthwise.weight"].shape[-1] == 3
    missing = runner.invoke(app, ["train", "--data", str(folder), "--out", str(tmp_path / "bad2"), *BEAT, *TINY,
                                  "--init", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2 and "nowhere" in missing.stderr
