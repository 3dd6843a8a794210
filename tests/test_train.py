"""Training: a run killed and resumed equals an uninterrupted run; checkpoints are complete and loadable."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from harmonize.errors import StripeError
from harmonize.train import TrainConfig, find_checkpoint, train

FIXTURES = Path(__file__).parent / "fixtures" / "pop909_mini"


class Killed(Exception):
    pass


def config(out: Path, **kw) -> TrainConfig:
    base = dict(data=str(FIXTURES), out=str(out), d_model=16, n_heads=2, n_layers=1, d_ff=32, batch_size=4,
                epochs=3, max_steps=9, checkpoint_every=2, warmup_steps=3, log_every=1, transpose=3,
                chroma_noise=0.2, bridge_dropout=0.3, dropout=0.1, threads=1, device="cpu",
                cache=str(out.parent / "cache"), bars=4, hop_bars=2)
    base.update(kw)
    return TrainConfig(**base)


def weights(run: Path) -> dict:
    return load_file(str(run / "final" / "model.safetensors"))


@pytest.mark.parametrize("stage", ["accompaniment", "chord"])
def test_killed_and_resumed_equals_uninterrupted(tmp_path, stage):
    straight = train(config(tmp_path / "a", stage=stage), progress=False)
    assert straight.steps == 9

    def kill_at(step):
        if step == 5:
            raise Killed

    with pytest.raises(Killed):
        train(config(tmp_path / "b", stage=stage), progress=False, on_step=kill_at)
    ckpt = find_checkpoint(tmp_path / "b")
    assert ckpt is not None and not (tmp_path / "b" / "final").exists()
    state = torch.load(ckpt / "train_state.pt", weights_only=True)
    assert state["step"] == 4  # the last checkpoint before the kill
    resumed = train(config(tmp_path / "b", stage=stage), resume=True, progress=False)
    assert resumed.steps == 9
    a, b = weights(tmp_path / "a"), weights(tmp_path / "b")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)


def test_run_folder_contents_and_refusals(tmp_path):
    run = tmp_path / "run"
    train(config(run, max_steps=3), progress=False)
    saved = json.loads((run / "train_config.json").read_text())
    assert saved["d_model"] == 16 and saved["stage"] == "accompaniment"
    meta = json.loads((run / "final" / "config.json").read_text())["meta"]
    assert meta["stage"] == "accompaniment" and meta["context"] == "bin" and "val" in meta
    lines = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    assert any("loss" in x for x in lines) and any("val_loss" in x for x in lines)
    with pytest.raises(StripeError, match="not empty"):
        train(config(run), progress=False)
    with pytest.raises(StripeError, match="nothing to resume"):
        train(config(tmp_path / "new"), resume=True, progress=False)


def test_final_model_harmonizes(tmp_path):
    from midi_factory import song_file

    from harmonize.pipeline import Harmonizer

    run = tmp_path / "run"
    train(config(run, max_steps=2), progress=False)
    tiny = __import__("tiny_models").tiny_harmonizer(tmp_path / "h")
    harmonizer = Harmonizer.load(str(tiny))
    assert harmonizer.accompaniment is not None
    from harmonize.hub import resolve

    spec = resolve(str(tiny))
    assert spec.chord.folder == tiny / "chord"
    from harmonize.io.midi import read_song

    song = read_song(song_file(tmp_path / "s.mid", bars=4))
    result = Harmonizer.load(str(tiny))(song)
    assert result.chords and result.chords[-1].end == song.n_steps


def test_config_file_then_flags(tmp_path):
    from harmonize.commands import build_train_config

    cfg_file = tmp_path / "run.toml"
    cfg_file.write_text('pe = "rope_c"\nd_model = 32\ncontext = "key"\n')
    values = dict(data=str(FIXTURES), out=str(tmp_path / "o"), pe="ropepool", d_model=128, context="bin",
                  inputs="melody,bridge", stage="accompaniment")
    cfg = build_train_config(values, cfg_file, explicit={"d_model"})
    assert (cfg.pe, cfg.context, cfg.d_model) == ("rope_c", "key", 128)  # file beats defaults, flags beat file
    cfg_file.write_text('nonsense = 1\n')
    with pytest.raises(StripeError, match="unknown config keys"):
        build_train_config(values, cfg_file, explicit=set())
    with pytest.raises(StripeError, match="--pe"):
        build_train_config({**values, "pe": "rope_z"}, None, explicit=set())


def test_length_curriculum_crops_early_batches(tmp_path):
    seen = []
    import harmonize.train as train_module

    original = train_module.crop

    def spy(batch, length):
        seen.append(length)
        return original(batch, length)

    train_module.crop = spy
    try:
        train(config(tmp_path / "c", max_steps=4, curriculum_steps=4, curriculum_min=16), progress=False)
    finally:
        train_module.crop = original
    assert seen[0] == 16 and seen == sorted(seen) and seen[-1] > 16
