"""A tiny, randomly initialised harmonizer (chord + accompaniment stages) for fast CLI and pipeline tests.

The demucs ``demucs_unittest`` idea: the real code path, a model small enough to build in milliseconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from harmonize.chords import N_CLASSES
from harmonize.data.dataset import input_dim, position_dim
from harmonize.model.checkpoint import save_model
from harmonize.model.transformer import ModelConfig, StructureTransformer


def tiny_stage(folder: Path, stage: str, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    if stage == "chord":
        inputs, context, n_out, pe, causal = ("melody", "meter"), "time", N_CLASSES, "rope_c", False
    else:
        inputs, context, n_out, pe, causal = ("melody", "bridge", "chroma", "meter"), "bin", 128, "ropepool", True
    cfg = ModelConfig(n_in=input_dim(inputs), n_out=n_out, d_model=16, n_heads=2, n_layers=1, d_ff=32,
                      pe=pe, position_dim=position_dim(context), causal=causal)
    model = StructureTransformer(cfg)
    if stage == "accompaniment":
        with torch.no_grad():  # a bias towards a few notes, so that the output is not empty
            model.head.bias[48:72] += 3.0
    save_model(model, folder, extra={"stage": stage, "context": context, "inputs": list(inputs), "bars": 4})
    return folder


def tiny_harmonizer(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    tiny_stage(folder / "chord", "chord")
    tiny_stage(folder / "accompaniment", "accompaniment")
    (folder / "harmonizer.json").write_text(json.dumps({"decoding": {"threshold": 0.5, "gap": 1}}))
    return folder
