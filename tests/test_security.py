"""Nothing read from a data or model folder runs code, sizes memory, or reaches the network by accident."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tiny_models import tiny_harmonizer

from harmonize import hub
from harmonize.errors import StripeError

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------- no pickle at all


def test_no_pickle_or_unsafe_torch_load_in_the_code():
    """No ``pickle`` anywhere in the package, benchmarks or examples; every ``torch.load`` says
    ``weights_only=True``; no ``np.load`` allows pickles."""
    offenders = []
    for folder in ("harmonize", "benchmarks", "examples"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            text = path.read_text()
            rel = path.relative_to(ROOT)
            if re.search(r"^\s*(import|from)\s+(c?pickle|cloudpickle|dill|joblib|shelve|marshal)\b", text, re.M) \
                    or re.search(r"\b(c?pickle|dill|joblib|shelve|marshal)\.(loads?|Unpickler)\b", text):
                offenders.append(f"{rel}: pickle-like module")
            for m in re.finditer(r"torch\.load\(", text):
                depth, end = 0, m.end() - 1
                for end in range(m.end() - 1, len(text)):  # up to the matching parenthesis
                    depth += {"(": 1, ")": -1}.get(text[end], 0)
                    if depth == 0:
                        break
                call = text[m.start(): end + 1]
                if not re.search(r"weights_only\s*=\s*True", call):
                    offenders.append(f"{rel}: {call}")
            if re.search(r"allow_pickle\s*=\s*True", text):
                offenders.append(f"{rel}: allow_pickle=True")
    assert offenders == []


# ------------------------------------------------------------------------------------- Hub ids


@pytest.fixture
def no_download(monkeypatch):
    """Any attempt to reach the Hub is recorded and fails."""
    calls = []

    def download(repo_id):
        calls.append(repo_id)
        raise StripeError("network!", repo_id)

    monkeypatch.setattr(hub, "download", download)
    return calls


@pytest.mark.parametrize("name", ["runs/final_typo", "./user/name", "~/nope/model", "/abs/nope"])
def test_missing_local_path_is_an_error_not_a_download(tmp_path, monkeypatch, no_download, name):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()  # the folder prefix exists: runs/final_typo is a path
    with pytest.raises(StripeError, match="no such model folder") as err:
        hub.resolve(name)
    assert err.value.path == name and no_download == []


def test_hub_prefix_is_the_hub(tmp_path, monkeypatch, no_download):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "user").mkdir()  # even with a folder of that name, hf: means the Hub
    with pytest.raises(StripeError, match="network"):
        hub.resolve("hf:user/name")
    with pytest.raises(StripeError, match="network"):
        hub.resolve("someone/model")  # bare id, nothing local by that name: still the Hub (compatibility)
    assert no_download == ["user/name", "someone/model"]
    with pytest.raises(StripeError, match="not a Hugging Face Hub repo id"):
        hub.resolve("hf:../../etc")
    assert len(no_download) == 2


def test_cli_typo_never_downloads(tmp_path):
    """Through the real CLI: the typo is one line naming it, exit 2 (HF offline so a regression fails fast)."""
    from midi_factory import song_file

    src = song_file(tmp_path / "in.mid", bars=2)
    (tmp_path / "runs").mkdir()
    res = subprocess.run([sys.executable, "-m", "harmonize", "harmonize", str(src), "-o", str(tmp_path / "o.mid"),
                          "--model", "runs/final_typo"], cwd=tmp_path, capture_output=True, text=True,
                         env={**__import__("os").environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)})
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: runs/final_typo: no such model folder")


# ------------------------------------------------------------------------------------- model configs


def _edit(folder: Path, name: str, value) -> None:
    path = folder / name
    if callable(value):
        data = json.loads(path.read_text())
        value(data)
        path.write_text(json.dumps(data))
    else:
        path.write_text(value if isinstance(value, str) else json.dumps(value))


def _set(**kv):
    return lambda data: data.update(kv)


BAD_MODELS = {
    "huge_d_ff": ("chord/config.json", _set(d_ff=10**12), "d_ff = 1000000000000 is outside"),
    "huge_layers_in_range": ("chord/config.json", _set(d_model=4096, d_ff=65536, n_layers=128, n_heads=64),
                             "parameters, over the limit"),
    "d_model_string": ("chord/config.json", _set(d_model="16"), "d_model must be a int"),
    "d_model_float": ("chord/config.json", _set(d_model=16.0), "d_model must be a int"),
    "causal_int": ("chord/config.json", _set(causal=1), "causal must be a bool"),
    "n_heads_bool": ("chord/config.json", _set(n_heads=True), "n_heads must be a int"),
    "d_model_zero": ("chord/config.json", _set(d_model=0), "d_model = 0 is outside"),
    "dropout_nan": ("chord/config.json", _set(dropout=2.0), "dropout"),
    "pe_list": ("chord/config.json", _set(pe=["ropepool"]), "pe must be a str"),
    "config_list": ("chord/config.json", [], "must be a JSON object"),
    "meta_list": ("accompaniment/config.json", _set(meta=["stage"]), "meta must be a JSON object"),
    "meta_bars_string": ("chord/config.json", lambda d: d["meta"].update(bars="4"), "meta.bars"),
    "meta_inputs_bad": ("accompaniment/config.json", lambda d: d["meta"].update(inputs=["x"]), "meta.inputs"),
    "harmonizer_list": ("harmonizer.json", [], "must be a JSON object"),
    "decoding_gap_string": ("harmonizer.json", {"decoding": {"gap": "x"}}, "decoding.gap must be an integer"),
    "decoding_list": ("harmonizer.json", {"decoding": [1]}, "decoding must be a JSON object"),
    "decoding_threshold": ("harmonizer.json", {"decoding": {"threshold": 7}}, "decoding.threshold"),
    "decoding_unknown": ("harmonizer.json", {"decoding": {"colour": 1}}, "unknown decoding setting"),
    "decoding_intro_outro": ("harmonizer.json", {"decoding": {"intro_outro": "loud"}},
                             "decoding.intro_outro must be one of rest, play, auto"),
    "decoding_melody_span_nc": ("harmonizer.json", {"decoding": {"melody_span_nc": 1}},
                                "decoding.melody_span_nc must be a bool"),
    "header_past_end": ("chord/model.safetensors", "\xff" * 16, "cannot load model weights"),
    "extra_tensor_shape": ("chord/config.json", _set(n_in=99), "cannot load model weights"),
}


@pytest.mark.parametrize("case", sorted(BAD_MODELS))
def test_bad_model_files_are_refused_before_building(tmp_path, monkeypatch, case):
    """Checked before the network is built: building one would raise instead of being reached."""
    from harmonize.model import checkpoint, transformer
    from harmonize.pipeline import Harmonizer

    name, value, message = BAD_MODELS[case]
    folder = tiny_harmonizer(tmp_path / "m")
    _edit(folder, name, value)
    real, built = transformer.StructureTransformer, []

    def recording(config):
        if torch.get_default_device().type != "meta":
            built.append(config)  # a real build, with memory
        return real(config)

    monkeypatch.setattr(checkpoint, "StructureTransformer", recording)
    with pytest.raises(StripeError) as err:
        Harmonizer.load(str(folder))
    assert message in err.value.message
    assert str(folder) in str(err.value.path)
    assert built == []
