"""Where weights come from: the bundled model, a local folder, or a Hugging Face Hub repo id.

A *harmonizer folder* holds ``chord/`` and ``accompaniment/`` model folders (each ``config.json`` +
``model.safetensors``, see ``model/checkpoint.py``) and ``harmonizer.json`` with decoding settings.
A single-stage folder (the ``final/`` of a ``stripe train`` run) is accepted too: it replaces that
stage of the bundled harmonizer. Nothing is downloaded unless the user names a Hub repo id.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from .errors import StripeError

BUNDLED = "pop909-ropepool"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")

DEFAULT_DECODING = {
    "threshold": 0.5, "gap": 1, "change_penalty": 2.0, "offbar_penalty": 1.0, "none_penalty": 3.0,
    "key_weight": 1.0, "prior_weight": 0.0, "chord_window_bars": 16,
}


def bundled_root() -> Path:
    """``harmonize/pretrained`` in an install (pyproject maps ``models/`` there); ``models/`` in a checkout."""
    try:
        return Path(str(resources.files("harmonize.pretrained")))
    except ModuleNotFoundError:  # running from the source tree, e.g. pytest in the repo root
        return Path(__file__).resolve().parents[1] / "models"


def bundled_names() -> list[str]:
    root = bundled_root()
    return sorted(p.name for p in root.iterdir() if (p / "harmonizer.json").exists()) if root.exists() else []


@dataclass
class StageSpec:
    folder: Path
    meta: dict = field(default_factory=dict)


@dataclass
class HarmonizerSpec:
    """Folders of the two stages and the decoding settings, before any weights are loaded."""

    chord: StageSpec | None
    accompaniment: StageSpec | None
    decoding: dict
    source: str


def resolve(model: str | None) -> HarmonizerSpec:
    """Turn ``--model`` (bundled name, local folder or Hub repo id) into stage folders."""
    if model is None or model in bundled_names() or model == BUNDLED:
        name = model or BUNDLED
        folder = bundled_root() / name
        if not (folder / "harmonizer.json").exists():
            raise StripeError("the bundled model is missing from this installation (reinstall stripe-harmonizer)",
                              folder)
        return _from_harmonizer_folder(folder, f"bundled:{name}")
    path = Path(model).expanduser()
    if path.exists():
        if not path.is_dir():
            raise StripeError("--model must be a folder (config.json + model.safetensors), not a file", path)
        if (path / "harmonizer.json").exists() or (path / "chord").is_dir():
            return _from_harmonizer_folder(path, str(path))
        if (path / "config.json").exists():
            meta = read_meta(path)
            stage = meta.get("stage")
            if stage not in ("chord", "accompaniment"):
                raise StripeError("config.json names no stage (chord or accompaniment)", path / "config.json")
            base = resolve(None)
            setattr(base, stage, StageSpec(path, meta))
            base.source = f"{path} ({stage}) + {base.source}"
            return base
        raise StripeError("not a model folder: no harmonizer.json, chord/ or config.json inside", path)
    if _HUB_ID.match(model):
        return _from_harmonizer_folder(download(model), f"hub:{model}")
    raise StripeError("no such model: not a bundled name, a folder, or a Hub repo id (user/name)", model)


def download(repo_id: str) -> Path:
    """Fetch a Hub repo (or take it from the local Hugging Face cache when offline)."""
    try:
        from huggingface_hub import snapshot_download

        offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")
        return Path(snapshot_download(repo_id, local_files_only=offline,
                                      allow_patterns=["*.json", "*.safetensors", "*.md"]))
    except Exception as err:  # network, missing repo, not in cache: one line for the user
        raise StripeError(f"cannot get the model from the Hugging Face Hub ({err.__class__.__name__}: "
                          f"{str(err).splitlines()[0] if str(err) else ''})", repo_id) from None


def read_meta(folder: Path) -> dict:
    try:
        return json.loads((folder / "config.json").read_text()).get("meta", {}) or {}
    except (OSError, ValueError) as err:
        raise StripeError(f"unreadable config.json ({err.__class__.__name__})", folder / "config.json") from None


def _from_harmonizer_folder(folder: Path, source: str) -> HarmonizerSpec:
    decoding = dict(DEFAULT_DECODING)
    settings = folder / "harmonizer.json"
    if settings.exists():
        try:
            decoding.update(json.loads(settings.read_text()).get("decoding", {}))
        except ValueError as err:
            raise StripeError(f"unreadable harmonizer.json ({err})", settings) from None
    stages = {}
    for stage in ("chord", "accompaniment"):
        sub = folder / stage
        stages[stage] = StageSpec(sub, read_meta(sub)) if (sub / "config.json").exists() else None
    if stages["chord"] is None:
        raise StripeError("the harmonizer has no chord/ model", folder)
    return HarmonizerSpec(stages["chord"], stages["accompaniment"], decoding, source)


def assemble(chord: Path, accompaniment: Path | None, out: Path, decoding: dict | None = None,
             card: str | None = None) -> Path:
    """Build a harmonizer folder from two trained stage folders (``final/`` of ``stripe train`` runs)."""
    import shutil

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for stage, src in (("chord", chord), ("accompaniment", accompaniment)):
        if src is None:
            continue
        meta = read_meta(Path(src))
        if meta.get("stage") != stage:
            raise StripeError(f"expected a {stage} model, config.json says {meta.get('stage')!r}", src)
        dest = out / stage
        dest.mkdir(exist_ok=True)
        for name in ("config.json", "model.safetensors"):
            shutil.copyfile(Path(src) / name, dest / name)
    (out / "harmonizer.json").write_text(json.dumps({"decoding": {**DEFAULT_DECODING, **(decoding or {})}},
                                                    indent=2) + "\n")
    if card is not None:
        (out / "README.md").write_text(card)
    return out
