"""Where weights come from: local harmonizer folders, single-stage folders, the Hub (offline cache), errors."""

import json
import shutil

import pytest
from tiny_models import tiny_harmonizer, tiny_stage

from harmonize.errors import StripeError
from harmonize.hub import BUNDLED, bundled_names, resolve


def test_local_harmonizer_folder(tmp_path):
    folder = tiny_harmonizer(tmp_path / "h")
    spec = resolve(str(folder))
    assert spec.chord.folder == folder / "chord" and spec.accompaniment.folder == folder / "accompaniment"
    assert spec.decoding["threshold"] == 0.5 and "change_penalty" in spec.decoding  # defaults fill the rest
    assert spec.chord.meta["stage"] == "chord"


def test_single_stage_folder_replaces_that_stage_of_the_bundled_model(tmp_path):
    if BUNDLED not in bundled_names():
        pytest.skip("no bundled model in this checkout")
    stage = tiny_stage(tmp_path / "acc", "accompaniment")
    spec = resolve(str(stage))
    assert spec.accompaniment.folder == stage
    assert spec.chord.folder.name == "chord" and BUNDLED in spec.source


def test_hub_repo_id_from_offline_cache(tmp_path, monkeypatch):
    # the layout huggingface_hub uses: models--user--name/{refs/main, snapshots/<rev>/...}
    cache = tmp_path / "hub"
    repo = cache / "models--someone--tiny-stripe"
    rev = "0123456789abcdef0123456789abcdef01234567"
    tiny_harmonizer(repo / "snapshots" / rev)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(rev)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(c, "HF_HUB_OFFLINE", True)
    spec = resolve("someone/tiny-stripe")
    assert spec.source == "hub:someone/tiny-stripe"
    assert (spec.chord.folder / "model.safetensors").exists()


def test_hub_repo_missing_offline_is_one_clear_error(tmp_path, monkeypatch):
    import huggingface_hub.constants as c

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(c, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(c, "HF_HUB_OFFLINE", True)
    with pytest.raises(StripeError, match="Hugging Face Hub") as err:
        resolve("nobody/nothing-here")
    assert err.value.path == "nobody/nothing-here"


@pytest.mark.parametrize("make, message", [
    (lambda p: p.write_text("x"), "must be a folder"),
    (lambda p: p.mkdir(), "not a model folder"),
])
def test_bad_model_paths(tmp_path, make, message):
    target = tmp_path / "m"
    make(target)
    with pytest.raises(StripeError, match=message):
        resolve(str(target))


def test_broken_checkpoints_fail_cleanly(tmp_path):
    from harmonize.pipeline import Harmonizer

    folder = tiny_harmonizer(tmp_path / "h")
    weights = folder / "accompaniment" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])  # truncated
    with pytest.raises(StripeError) as err:
        Harmonizer.load(str(folder))
    assert "accompaniment" in str(err.value.path)
    shutil.rmtree(folder)
    folder = tiny_harmonizer(tmp_path / "h")
    cfg = folder / "chord" / "config.json"
    data = json.loads(cfg.read_text())
    data["d_model"] = 32  # shape mismatch with the weights
    cfg.write_text(json.dumps(data))
    with pytest.raises(StripeError):
        Harmonizer.load(str(folder))
    (folder / "harmonizer.json").write_text("{not json")
    with pytest.raises(StripeError, match="harmonizer.json"):
        resolve(str(folder))


def test_bundled_model_ships_and_loads():
    """The package data rule in pyproject.toml must keep the weights in every install (basic-pitch's lesson)."""
    from harmonize.pipeline import Harmonizer

    assert BUNDLED in bundled_names()
    harmonizer = Harmonizer.load(None)
    assert harmonizer.source == f"bundled:{BUNDLED}" and harmonizer.accompaniment is not None
    meta = harmonizer.accompaniment.meta
    assert meta["stage"] == "accompaniment" and meta["context"] == "bin"


def test_assembly_validates_both_stages_before_writing(tmp_path):
    """Issue 12: a wrong stage folder leaves nothing behind; a good assembly is written atomically."""
    from harmonize.hub import assemble

    model_dir = tiny_harmonizer(tmp_path / "m")
    out = tmp_path / "assembled"
    with pytest.raises(StripeError, match="expected a accompaniment model"):
        assemble(model_dir / "chord", model_dir / "chord", out)
    assert not out.exists()
    assemble(model_dir / "chord", model_dir / "accompaniment", out, card="# card\n")
    for stage in ("chord", "accompaniment"):
        assert (out / stage / "model.safetensors").read_bytes() == (model_dir / stage / "model.safetensors").read_bytes()
    assert json.loads((out / "harmonizer.json").read_text())["decoding"]
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "accompaniment", "chord", "harmonizer.json"]


def test_an_older_folders_melody_span_nc_reads_as_intro_outro(tmp_path):
    from harmonize.hub import validate_decoding

    assert validate_decoding({"melody_span_nc": True, "gap": 2}, tmp_path) == {"intro_outro": "rest", "gap": 2}
    assert validate_decoding({"melody_span_nc": False}, tmp_path) == {"intro_outro": "play"}
    # a folder that names both: intro_outro wins
    assert validate_decoding({"melody_span_nc": True, "intro_outro": "auto"}, tmp_path) == {"intro_outro": "auto"}
