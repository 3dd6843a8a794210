"""Training throughput (windows/s) of ``stripe train`` in 1 and N processes (DDP under torchrun).

    python benchmarks/train_throughput.py [--data FOLDER] [--nprocs 1,2] [--steps 30] [--threads 1]
                                          [--batch-size 8] [--bars 16] [--device cpu] [--json-out FILE]

Each row is a fresh ``stripe train`` run of ``--steps`` optimizer steps with the default model
(d_model 128, 2 layers, 4 heads) on ``--bars``-bar windows and a global batch of ``--batch-size``:
one process is ``python -m harmonize train``, N processes are
``python -m torch.distributed.run --standalone --nproc-per-node N -m harmonize train`` (gloo on CPU,
NCCL on CUDA). The rate is rank 0's steps/s over the training loop (``log.jsonl``, startup and data
loading excluded) times the global batch. ``--threads`` is per process (OMP_NUM_THREADS too).

Data: ``--data`` (a POP909-layout folder or a folder of MIDI files), else 24 generated 32-bar songs
(melody + block chords, ``tests/midi_factory.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def generated_folder(root: Path, n_songs: int = 24, bars: int = 32) -> Path:
    sys.path.insert(0, str(ROOT / "tests"))
    from midi_factory import song_file

    root.mkdir(parents=True, exist_ok=True)
    for i in range(n_songs):
        song_file(root / f"song{i:02d}.mid", bars=bars)
    return root


def run_once(nproc: int, data: Path, work: Path, args) -> dict:
    out = work / f"run-{nproc}"
    cfg = {"data": str(data), "bars": args.bars, "hop_bars": 4, "batch_size": args.batch_size,
           "max_steps": args.steps, "epochs": 1000, "log_every": args.steps, "checkpoint_every": 10**9,
           "threads": args.threads, "device": args.device, "warmup_steps": 10}
    config = work / f"cfg-{nproc}.json"
    config.write_text(json.dumps(cfg))
    train = ["-m", "harmonize", "train", "--config", str(config), "--out", str(out)]
    if nproc == 1:
        cmd = [sys.executable, *train]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc), *train]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": str(args.threads),
           "MKL_NUM_THREADS": str(args.threads)}
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    rows = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    rate = [r["steps_per_s"] for r in rows if r.get("step") == args.steps and "steps_per_s" in r][-1]
    return {"processes": nproc, "threads_per_process": args.threads, "steps": args.steps,
            "global_batch": args.batch_size, "steps_per_s": rate, "windows_per_s": round(rate * args.batch_size, 2),
            "wall_s": round(wall, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path)
    ap.add_argument("--nprocs", default="1,2")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--bars", type=int, default=16)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args()
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = args.data or generated_folder(work / "songs")
        rows = [run_once(int(n), data, work, args) for n in args.nprocs.split(",")]
    print(f"torch {torch.__version__}, device {args.device}, {os.cpu_count()} CPUs, "
          f"{args.bars}-bar windows, global batch {args.batch_size}, {args.steps} steps")
    print(f"{'processes':>9} {'threads/proc':>12} {'steps/s':>8} {'windows/s':>10} {'wall s':>7}")
    for r in rows:
        print(f"{r['processes']:>9} {r['threads_per_process']:>12} {r['steps_per_s']:>8.2f} "
              f"{r['windows_per_s']:>10.2f} {r['wall_s']:>7.1f}")
    if args.json_out:
        args.json_out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
