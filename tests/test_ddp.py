"""DDP under torchrun (gloo, CPU, 2 processes): equals one process with the same global batch; resumes."""

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

from harmonize.distributed import DistContext
from harmonize.train import TrainConfig, epoch_order, load_encoded, make_dataset, train

ROOT = Path(__file__).resolve().parents[1]


class Killed(Exception):
    pass


def settings(data: Path) -> dict:
    # dropout 0: dropout masks are drawn per process; everything else (augmentation, order) is seeded
    return dict(data=str(data), d_model=16, n_heads=2, n_layers=1, d_ff=32, dropout=0.0, bars=4, hop_bars=2,
                batch_size=4, epochs=4, max_steps=7, warmup_steps=2, checkpoint_every=2, log_every=1,
                transpose=2, chroma_noise=0.2, curriculum_steps=4, curriculum_min=16, threads=1, device="cpu")


def torchrun(config: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
        pytest.skip("torch.distributed with gloo is not available")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "harmonize", "train", "--config", str(config), "--out", str(out), *extra]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def assert_same_weights(a: Path, b: Path, atol: float = 1e-6) -> None:
    wa, wb = load_file(str(a / "final" / "model.safetensors")), load_file(str(b / "final" / "model.safetensors"))
    assert wa.keys() == wb.keys()
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=0, atol=atol)


@pytest.fixture
def data(tmp_path) -> Path:
    return song_folder(tmp_path / "songs", n_songs=4, broken=False)


def test_shards_make_up_the_global_batch(data):
    cfg = TrainConfig(**settings(data), out="unused")
    ds = make_dataset(cfg, load_encoded(cfg, "train"), train=True)
    assert len(ds) % 2 == 1  # the sampler pads: the repeat must weigh nothing
    order = epoch_order(len(ds), 0, 0)
    single = list(DistContext().batches(ds, order, 4))
    ranks = [list(DistContext(rank=r, world=2).batches(ds, order, 4)) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) == len(single)
    for k, whole in enumerate(single):
        got = set()
        for r in range(2):
            b = ranks[r][k]
            got |= {(n, s) for n, s, w in zip(b["name"], b["start"], b["loss_mask"].any(1).tolist(), strict=True) if w}
        assert got == set(zip(whole["name"], whole["start"], strict=True))
    last = ranks[1][-1]["loss_mask"].any(1).tolist()
    assert last == [True, False]  # the sampler's padding repeat in the last, odd, batch weighs nothing


def test_two_processes_resume_a_run_and_equal_one_process(data, tmp_path):
    """One torchrun call (they are slow to start): a one-process run killed after its step-2 checkpoint
    is resumed by two ranks, which train steps 3-7 (epoch ends, padded odd batches, curriculum crops)
    and must land on the uninterrupted one-process run's weights and losses."""
    cfg = settings(data)
    config = tmp_path / "cfg.json"
    config.write_text(json.dumps(cfg))
    one = train(TrainConfig(**cfg, out=str(tmp_path / "one")), progress=False)
    assert one.steps == 7

    def kill_at(step):
        if step == 3:
            raise Killed

    with pytest.raises(Killed):
        train(TrainConfig(**cfg, out=str(tmp_path / "two")), progress=False, on_step=kill_at)
    done = torchrun(config, tmp_path / "two", "--resume")
    assert done.stderr.count("done: 7 steps") == 1  # rank 0 alone speaks
    assert_same_weights(tmp_path / "one", tmp_path / "two")

    def losses(run):
        rows = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
        return {r["step"]: r["loss"] for r in rows if "loss" in r and r["step"] >= 3}

    ref = losses(tmp_path / "one")
    assert len(ref) == 5 and losses(tmp_path / "two") == pytest.approx(ref, abs=1e-4)
