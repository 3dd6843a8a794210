"""Save and load a model as ``config.json`` + ``model.safetensors`` (no pickle, strict loading).

Every failure to load (missing files, bad JSON, unknown config keys, corrupt weights, shape mismatch)
becomes a one-line ``StripeError(message, path)``, which the CLI prints without a traceback.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch

from harmonize.atomic import atomic_write, atomic_write_text
from harmonize.errors import StripeError

from .transformer import ROTARY, ModelConfig, StructureTransformer

MODEL_TYPE = "StructureTransformer"
CONFIG_FILE, WEIGHTS_FILE = "config.json", "model.safetensors"
# 2: rotary pairs are the halves of the head dim (1, no "format" key: interleaved pairs)
FORMAT = 2


def save_model(model: StructureTransformer, folder: Path, extra: dict | None = None) -> None:
    """Write ``folder/config.json`` (config, model_type, ``meta``) and ``folder/model.safetensors``.

    Buffers (e.g. FAVOR+ projections) are saved too, so a loaded model gives identical outputs.
    """
    from safetensors.torch import save_model as st_save_model

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = dataclasses.asdict(model.config) | {"model_type": MODEL_TYPE, "format": FORMAT, "meta": extra or {}}
    text = json.dumps(config, indent=2, sort_keys=True) + "\n"
    # weights first: a config.json next to stale weights is worse than the reverse
    atomic_write(folder / WEIGHTS_FILE, lambda tmp: st_save_model(model, tmp))
    atomic_write_text(folder / CONFIG_FILE, text)


def read_config(folder: Path) -> tuple[ModelConfig, dict, int]:
    """Parse and validate ``folder/config.json`` -> (ModelConfig, meta, format version)."""
    path = Path(folder) / CONFIG_FILE
    if not path.is_file():
        raise StripeError("model config not found (expected config.json in the model folder)", path)
    try:
        raw = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise StripeError(f"unreadable model config: {e}", path) from None
    if not isinstance(raw, dict):
        raise StripeError("model config must be a JSON object", path)
    if raw.pop("model_type", MODEL_TYPE) != MODEL_TYPE:
        raise StripeError(f"not a {MODEL_TYPE} checkpoint", path)
    meta = raw.pop("meta", {})
    version = raw.pop("format", 1)
    if version not in (1, FORMAT):
        raise StripeError(f"checkpoint format {version!r} is not supported by this stripe (it reads 1 and "
                          f"{FORMAT}); upgrade stripe", path)
    known = {f.name for f in dataclasses.fields(ModelConfig)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise StripeError(f"unknown config keys: {', '.join(unknown)}", path)
    try:
        return ModelConfig(**raw), meta, version
    except (TypeError, ValueError) as e:
        raise StripeError(f"invalid model config: {e}", path) from None


def _one_line(e: Exception) -> str:
    """The informative line of an exception (load_state_dict puts the detail on line 2)."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()] or [type(e).__name__]
    line = lines[1] if len(lines) > 1 and lines[0].startswith("Error(s) in loading") else lines[0]
    return line if len(line) <= 240 else line[:237] + "..."


def load_model(folder: Path, device: str | torch.device = "cpu") -> StructureTransformer:
    """Rebuild the model from ``folder`` and load its weights strictly; returns it in eval mode."""
    from safetensors.torch import load_model as st_load_model

    folder = Path(folder)
    if not folder.is_dir():
        raise StripeError("model folder not found", folder)
    config, _, version = read_config(folder)
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise StripeError("model weights not found (expected model.safetensors in the model folder)", weights)
    model = StructureTransformer(config)
    try:
        missing, unexpected = st_load_model(model, weights, strict=True, device=str(device))
    except Exception as e:  # safetensors and load_state_dict raise various types; keep one line
        raise StripeError(f"cannot load model weights: {_one_line(e)}", weights) from None
    if version == 1 and config.pe in ROTARY:
        interleaved_to_halves(model)
    return model.to(device).eval()


@torch.no_grad()
def interleaved_to_halves(model: StructureTransformer) -> None:
    """Convert a format-1 model (rotary pairs (2i, 2i+1)) to pairs (i, i + D/2) in place.

    Rotary encodings only ever combine the two coordinates of a pair, so reordering every head's q and
    k projection outputs as [0, 2, 4, ..., 1, 3, 5, ...] gives exactly the same attention scores.
    """
    H, D = model.config.n_heads, model.config.d_model // model.config.n_heads
    order = torch.cat((torch.arange(0, D, 2), torch.arange(1, D, 2)))
    for block in model.blocks:
        qkv = block.attn.qkv
        for param in (qkv.weight, qkv.bias):
            rows = param.view(3, H, D, -1)  # the q, k, v thirds of the output rows
            rows[:2] = rows[:2, :, order].clone()
