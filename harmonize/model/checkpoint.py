"""Save and load a model as ``config.json`` + ``model.safetensors`` (no pickle, strict loading).

Every failure to load (missing files, bad JSON, unknown config keys, corrupt weights, shape mismatch)
becomes a one-line ``StripeError(message, path)``, which the CLI prints without a traceback.

Nothing is allocated on the strength of ``config.json`` alone: every field is type- and range-checked
(``CONFIG_LIMITS``), the network is first built on the ``meta`` device (no memory), its parameter count
capped (``MAX_PARAMETERS``) and its tensor names and shapes compared with the safetensors header; only
then is the real network built and the weights loaded.
"""

from __future__ import annotations

import dataclasses
import json
import math
import struct
from pathlib import Path

import torch

from harmonize.errors import StripeError
from harmonize.io.atomic import atomic_write, atomic_write_text

from .transformer import ROTARY, ModelConfig, StructureTransformer

MODEL_TYPE = "StructureTransformer"
CONFIG_FILE, WEIGHTS_FILE = "config.json", "model.safetensors"
# 2: rotary pairs are the halves of the head dim (1, no "format" key: interleaved pairs)
FORMAT = 2
# inclusive ranges of the integer fields of ModelConfig: far beyond any sensible model, far below what
# would exhaust memory before the weights are checked
CONFIG_LIMITS = {
    "n_in": (1, 4096), "n_out": (1, 4096), "d_model": (1, 4096), "n_heads": (1, 256), "n_layers": (1, 128),
    "d_ff": (1, 65536), "position_dim": (1, 256), "n_freqs": (1, 256), "n_features": (1, 8192),
    "chunk_size": (1, 65536), "local_kernel": (1, 255), "block_kernel": (1, 255),
}
MAX_PARAMETERS = 500_000_000  # 2 GB of float32; the bundled stages have under a million each
MAX_HEADER_BYTES = 100 * 2**20  # safetensors' own limit


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
    _check_field_types(raw, path)
    try:
        return ModelConfig(**raw), meta, version
    except (TypeError, ValueError) as e:
        raise StripeError(f"invalid model config: {e}", path) from None


def _check_field_types(raw: dict, path: Path) -> None:
    """Each field has its default's type (an int for a float is fine; a bool is not an int) and the
    integers are inside ``CONFIG_LIMITS``."""
    defaults = {f.name: f.default for f in dataclasses.fields(ModelConfig)}
    for name, value in raw.items():
        default = defaults[name]
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, int):
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif isinstance(default, float):
            ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        else:
            ok = isinstance(value, type(default))
        if not ok:
            text = json.dumps(value)
            text = text if len(text) <= 40 else text[:37] + "..."
            raise StripeError(f"invalid model config: {name} must be a {type(default).__name__}, not {text}", path)
        if name in CONFIG_LIMITS and not CONFIG_LIMITS[name][0] <= value <= CONFIG_LIMITS[name][1]:
            lo, hi = CONFIG_LIMITS[name]
            raise StripeError(f"invalid model config: {name} = {value} is outside {lo}..{hi}", path)
    if not 0.0 <= raw.get("dropout", 0.0) < 1.0:
        raise StripeError("invalid model config: dropout must be in [0, 1)", path)


def read_safetensors_header(path: Path) -> dict[str, tuple[str, list[int]]]:
    """Tensor name -> (dtype, shape) from a safetensors file's JSON header, without reading the data."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise ValueError("file shorter than its 8-byte header length")
            (n,) = struct.unpack("<Q", head)
            size = Path(path).stat().st_size
            if n > min(MAX_HEADER_BYTES, size - 8):
                raise ValueError(f"header length {n} is past the end of the file")
            header = json.loads(f.read(n))
        if not isinstance(header, dict):
            raise ValueError("header is not a JSON object")
        out = {}
        for name, info in header.items():
            if name == "__metadata__":
                continue
            shape = info.get("shape") if isinstance(info, dict) else None
            if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
                raise ValueError(f"tensor {name[:40]!r} has no valid shape")
            out[name] = (str(info.get("dtype")), shape)
        return out
    except (OSError, ValueError) as e:  # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise StripeError(f"cannot load model weights: not a safetensors file ({_one_line(e)})", path) from None


def check_weights_match(config: ModelConfig, weights: Path) -> None:
    """Build the network on the meta device (no memory), cap its size, and compare its tensors with the
    safetensors header: a config sized by an attacker fails here, before anything is allocated."""
    header = read_safetensors_header(weights)
    with torch.device("meta"):
        expected = {k: list(v.shape) for k, v in StructureTransformer(config).state_dict().items()}
    n_params = sum(math.prod(s) for s in expected.values())
    if n_params > MAX_PARAMETERS:
        raise StripeError(f"invalid model config: {n_params:,} parameters, over the limit of {MAX_PARAMETERS:,}",
                          Path(weights).parent / CONFIG_FILE)
    for name, (_, shape) in header.items():
        if name not in expected:
            raise StripeError(f"cannot load model weights: unexpected tensor {name[:60]!r} for this config", weights)
        if shape != expected[name]:
            raise StripeError(f"cannot load model weights: {name} has shape {shape} in the file, {expected[name]} "
                              "in the config", weights)
    if sum(math.prod(s) for _, s in header.values()) > n_params:
        raise StripeError("cannot load model weights: more values in the file than the config has parameters",
                          weights)


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
    check_weights_match(config, weights)
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
