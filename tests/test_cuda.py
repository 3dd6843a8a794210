"""Training on CUDA: bf16 autocast, ``torch.compile`` and DDP over NCCL (issue 14).

Skipped where no CUDA device is present (CI, most laptops); run ``pytest tests/test_cuda.py -v`` on a GPU
machine. Each test trains a tiny model a few steps and checks what a user relies on: the run finishes, the
weights are finite, bf16 and fp32 land close to each other, and under ``torchrun`` with NCCL rank 0 alone
speaks and the result equals a one-process run with the same global batch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from midi_factory import song_folder
from safetensors.torch import load_file

from harmonize.train import TrainConfig, train

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def settings(data: Path, **extra) -> dict:
    return dict(data=str(data), d_model=32, n_heads=2, n_layers=1, d_ff=64, dropout=0.0, bars=4, hop_bars=2,
                batch_size=4, epochs=2, max_steps=6, warmup_steps=2, checkpoint_every=3, log_every=1,
                device="cuda", **extra)


@pytest.fixture
def data(tmp_path) -> Path:
    return song_folder(tmp_path / "songs", n_songs=4, broken=False)


def weights(run: Path) -> dict:
    return load_file(str(run / "final" / "model.safetensors"))


@pytest.mark.parametrize("stage", ["accompaniment", "chord-beat"])
def test_bf16_trains_close_to_fp32(data, tmp_path, stage):
    extra = {"stage": stage, "causal": stage != "chord-beat"}
    fp32 = train(TrainConfig(**settings(data, precision="fp32", **extra), out=str(tmp_path / "fp32")), progress=False)
    bf16 = train(TrainConfig(**settings(data, precision="bf16", **extra), out=str(tmp_path / "bf16")), progress=False)
    assert fp32.steps == bf16.steps == 6
    a, b = weights(tmp_path / "fp32"), weights(tmp_path / "bf16")
    assert all(t.isfinite().all() for t in b.values())
    # six small steps from the same start: bf16 rounding moves the weights a little, not a lot
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 5e-2
    assert abs(fp32.history[-1]["val_loss"] - bf16.history[-1]["val_loss"]) < 0.1


def test_compile_gives_the_same_model_as_eager(data, tmp_path):
    eager = train(TrainConfig(**settings(data, precision="fp32"), out=str(tmp_path / "eager")), progress=False)
    compiled = train(TrainConfig(**settings(data, precision="fp32", compile=True), out=str(tmp_path / "compiled")),
                     progress=False)
    assert eager.steps == compiled.steps
    a, b = weights(tmp_path / "eager"), weights(tmp_path / "compiled")
    assert a.keys() == b.keys()  # compile's wrapper never leaks into the saved names
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-3, atol=1e-4)


def test_torchrun_nccl_equals_one_process(data, tmp_path):
    ranks = min(2, torch.cuda.device_count())
    cfg = settings(data, precision="fp32", threads=1)
    config = tmp_path / "cfg.json"
    config.write_text(json.dumps(cfg))
    train(TrainConfig(**cfg, out=str(tmp_path / "one")), progress=False)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(ranks),
           "-m", "harmonize", "train", "--config", str(config), "--out", str(tmp_path / "ddp")]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr.count("done: 6 steps") == 1  # rank 0 alone speaks
    a, b = weights(tmp_path / "one"), weights(tmp_path / "ddp")
    for k in a:  # NCCL's all-reduce sums in another order than one process: float tolerance
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5)
