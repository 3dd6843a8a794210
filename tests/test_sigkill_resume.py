"""``stripe train`` killed with SIGKILL at random moments, five times, then resumed to the end, gives
exactly the weights of an uninterrupted run; after every kill the checkpoint folder loads.

Real processes (``python -m harmonize train`` in a subprocess), a tiny model on the three POP909 fixture
songs. The kills are seeded: each round waits until training has gone a random 1-6 steps past its
resume point (read from ``log.jsonl``, one line per step) and kills at once, so kills land anywhere in
a step, including in the middle of writing a checkpoint (one every 2 steps).
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from harmonize.model.checkpoint import load_model
from harmonize.train import TrainConfig, find_checkpoint, train

FIXTURES = Path(__file__).parent / "fixtures" / "pop909_mini"
MAX_STEPS = 40
KILLS = 5


def settings(out: Path, cache: Path) -> dict:
    """Every TrainConfig field that matters, for both the CLI runs (--config) and the reference run."""
    return dict(data=str(FIXTURES), out=str(out), stage="accompaniment", d_model=16, n_heads=2, n_layers=1,
                d_ff=32, bars=4, hop_bars=2, batch_size=4, epochs=3, max_steps=MAX_STEPS, checkpoint_every=2,
                warmup_steps=5, log_every=1, transpose=3, chroma_noise=0.2, bridge_dropout=0.3, dropout=0.1,
                seed=7, threads=1, device="cpu", cache=str(cache))


def start(out: Path, config: Path, resume: bool) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "harmonize", "train", "--out", str(out), "--config", str(config)]
    env = dict(os.environ, OMP_NUM_THREADS="1", COLUMNS="100")
    return subprocess.Popen(cmd + (["--resume"] if resume else []), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=env)


def logged_step(run: Path) -> int:
    """The last optimizer step in log.jsonl (a line cut by a kill is skipped)."""
    step = 0
    try:
        lines = (run / "log.jsonl").read_text().splitlines()
    except FileNotFoundError:
        return 0
    for line in lines:
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if "loss" in rec:
            step = rec["step"]
    return step


def checkpoint_step(run: Path) -> int:
    """Step of the checkpoint a resume would use; also proves that checkpoint loads (weights and state)."""
    ckpt = find_checkpoint(run)
    if ckpt is None:
        return 0
    load_model(ckpt)  # strict: config + safetensors complete and consistent
    state = torch.load(ckpt / "train_state.pt", map_location="cpu", weights_only=True)
    assert {"optimizer", "torch_rng", "python_rng", "step", "epoch", "batch_pos"} <= set(state)
    return state["step"]


def test_sigkill_five_times_then_resume_equals_uninterrupted(tmp_path):
    cache = tmp_path / "cache"
    reference = TrainConfig(**settings(tmp_path / "reference", cache))
    torch_threads = torch.get_num_threads()
    try:
        straight = train(reference, progress=False)  # also fills the preprocessing cache for the runs below
    finally:
        torch.set_num_threads(torch_threads)
    assert straight.steps == MAX_STEPS

    run = tmp_path / "killed"
    config = tmp_path / "config.json"
    config.write_text(json.dumps({k: v for k, v in settings(run, cache).items() if k != "out"}))
    rng = random.Random(1234)
    saved_steps = []
    for kill in range(KILLS):
        resume_from = checkpoint_step(run)
        target = resume_from + rng.randint(1, 6)
        proc = start(run, config, resume=kill > 0)
        deadline = time.monotonic() + 60
        while logged_step(run) < target and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        assert proc.poll() is None, f"run {kill} ended before the kill: {proc.stderr.read().decode()[-500:]}"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
        assert proc.returncode == -signal.SIGKILL
        assert not (run / "final").exists()
        step = checkpoint_step(run)  # the checkpoint folder loads after every kill
        assert step >= resume_from, "a kill lost a checkpoint that was already complete"
        assert step <= target + 1  # the kill came during training, not after it
        saved_steps.append(step)
    assert saved_steps[-1] > 0  # training did get somewhere between the kills

    proc = start(run, config, resume=True)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()[-2000:]
    saved = json.loads((run / "train_config.json").read_text())
    assert saved == dataclasses.asdict(reference) | {"out": str(run), "inputs": list(reference.inputs)}
    a = load_file(str(tmp_path / "reference" / "final" / "model.safetensors"))
    b = load_file(str(run / "final" / "model.safetensors"))
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(b[name], a[name], rtol=0, atol=0, msg=f"{name} differs")
    assert not list(run.glob("*.tmp")) and not (run / "checkpoint.old").exists()


@pytest.fixture(scope="module")
def short_run(tmp_path_factory) -> Path:
    """A finished 2-step run, copied by each test below before it damages the copy."""
    root = tmp_path_factory.mktemp("short")
    cfg = TrainConfig(**settings(root / "run", root / "cache") | {"max_steps": 2})
    threads = torch.get_num_threads()
    try:
        train(cfg, progress=False)
    finally:
        torch.set_num_threads(threads)
    return root / "run"


@pytest.mark.parametrize("damage", ["truncate_state", "truncate_weights", "delete_config"])
def test_resume_from_a_damaged_checkpoint_is_one_line(tmp_path, short_run, damage):
    """A checkpoint damaged behind the trainer's back (not by a kill) stops the resume with one line."""
    import shutil

    shutil.copytree(short_run, tmp_path / "run")
    threads = torch.get_num_threads()
    ckpt = tmp_path / "run" / "checkpoint"
    target = {"truncate_state": ckpt / "train_state.pt", "truncate_weights": ckpt / "model.safetensors",
              "delete_config": ckpt / "config.json"}[damage]
    if damage == "delete_config":
        target.unlink()
    else:
        target.write_bytes(target.read_bytes()[:50])
    from typer.testing import CliRunner

    from harmonize.cli import app

    result = CliRunner().invoke(app, ["train", "--out", str(tmp_path / "run"), "--resume", "--data", str(FIXTURES)])
    torch.set_num_threads(threads)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    # the banner (the run's saved settings, not the flags' defaults), then the error on one line
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("resuming the accompaniment stage") and "d_model=16" in result.stderr
    assert [x for x in lines if x.startswith("error:")] == lines[-1:], result.stderr
    assert lines[-1].startswith(f"error: {target}: ")
