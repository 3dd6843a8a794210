"""Training: the paper's recipe (Adam, warmup then per-epoch decay, clipping, length curriculum).

A run folder holds:
- ``train_config.json``: the resolved ``TrainConfig``;
- ``checkpoint/``: model (config.json + model.safetensors) and ``train_state.pt`` (optimizer, scheduler,
  RNG states, epoch and batch position), written atomically every ``checkpoint_every`` steps;
- ``final/``: the finished model, loadable by ``stripe harmonize --model``; ``best/``: the model of the best
  validation so far (per-beat chord accuracy, else val loss), written after each epoch;
- ``log.jsonl``: one JSON line per logged step and per validation.

Resuming replays the same data order (a permutation seeded by seed and epoch) from the saved batch
position, so a run killed and resumed loses nothing before its last checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import random
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from .errors import StripeError
from .io.atomic import TEMP_PREFIX, atomic_write_text

STAGES = ("chord", "accompaniment", "chord-beat")


@dataclass
class TrainConfig:
    data: str = "pop909"  # a POP909-layout folder, or a folder of MIDI files (data/folder_data.py)
    structure: str | None = None  # Dai et al. folder (chords from finalized_chord.txt) or None
    out: str = "runs/model"
    stage: str = "accompaniment"  # chord | accompaniment | chord-beat (one token per beat, key-relative)
    pe: str = "ropepool"
    context: str = "bin"  # none | time | rep | key | bin
    inputs: tuple[str, ...] = ("melody", "bridge")
    bars: int = 16  # training windows (the paper's 16 bars)
    hop_bars: int = 4
    d_model: int = 128
    n_heads: int = 4
    n_layers: int = 2
    d_ff: int = 256
    dropout: float = 0.1
    feature_map: str = "elu"
    causal: bool = True
    epochs: int = 15
    batch_size: int = 8
    lr: float = 5e-4
    warmup_steps: int = 200
    lr_decay: float = 0.85  # per epoch after warmup (StepLR γ of the reference code)
    grad_clip: float = 1.0
    curriculum_steps: int = 0  # 0 = off; else grow window length from curriculum_min steps
    curriculum_min: int = 64
    transpose: int = 0  # random transposition in ±k semitones (augmentation)
    chroma_noise: float = 0.0  # chance to swap a chord span for a random chord (exposure gap)
    bridge_dropout: float = 0.0  # chance to blank the bridge input (users' files have none)
    seed: int = 0
    device: str = "auto"
    checkpoint_every: int = 200
    log_every: int = 20
    max_steps: int = 0  # 0 = no cap (for quick runs and tests)
    max_minutes: float = 0.0  # 0 = no cap; else stop cleanly (final model written) after this wall time
    max_songs: int = 0  # 0 = all songs of the split
    val_max_songs: int = 0
    threads: int = 0  # 0 = torch default
    cache: str | None = None  # preprocessing cache folder (None = default)
    precision: str = "auto"  # auto (bf16 autocast on CUDA, fp32 on CPU) | bf16 | fp32
    compile: bool = False  # torch.compile the model (CUDA only)
    cl: str | None = None  # chord-beat: a POP909-CL folder, whose corrected chords replace POP909's
    aux_weight: float = 0.5  # chord-beat: weight of the piano bass and chroma heads (0 = chords only)
    extra_data: str | None = None  # chord-beat: a second data folder whose songs join each split
    window_jitter: bool = False  # chord-beat: cut the songs into windows at other bars every epoch
    extra_repeat: int = 1  # chord-beat: how many times each extra training song is used per epoch
    init: str | None = None  # start from this model's weights (fine-tuning); same architecture required
    local_kernel: int = 1  # > 1: the input projection convolves this many neighbouring tokens (non-causal)
    block_kernel: int = 1  # > 1: every block adds a depthwise convolution over this many tokens (non-causal)
    beat_features: str = "base"  # chord-beat: the token's feature set (beat_tokens.FEATURE_SETS)
    bar_silence: float = 0.0  # chord-beat: share of training bars whose melody is taken out (targets kept)
    bridge_fill: bool = False  # chord-beat: add a copy of each training song with its melody's rests filled by the bridge
    keep_epochs: bool = False  # also save each epoch's weights as epochs/NN/ (benchmarks/pick_epoch.py scores them)

    def __post_init__(self):
        _check_fields(self)
        if self.stage not in STAGES:
            raise StripeError(f"stage must be one of {', '.join(STAGES)}, not {self.stage!r}")
        self.inputs = tuple(self.inputs)
        for name in ("local_kernel", "block_kernel"):
            kernel = getattr(self, name)
            if kernel % 2 == 0:
                raise StripeError(f"{name} must be odd (a window centred on the token), not {kernel}")
            if kernel > 1 and self.causal:
                raise StripeError(f"{name} > 1 sees the tokens after each one: it needs --bidirectional")
        if self.bridge_fill and self.stage != "chord-beat":
            raise StripeError("--bridge-fill is for --stage chord-beat")
        from .beat_tokens import FEATURE_SETS

        if self.beat_features not in FEATURE_SETS:
            raise StripeError(f"beat_features must be one of {', '.join(FEATURE_SETS)}, not {self.beat_features!r}")


# (low, high) of every number in TrainConfig: a config file or a flag outside these is a user error, caught
# before anything is written or allocated
_RANGES = {
    "bars": (1, 1024), "hop_bars": (1, 1024), "d_model": (1, 4096), "n_heads": (1, 256), "n_layers": (1, 128),
    "d_ff": (1, 65536), "dropout": (0.0, 0.99), "epochs": (1, 10**6), "batch_size": (1, 65536),
    "lr": (1e-12, 10.0), "warmup_steps": (0, 10**9), "lr_decay": (1e-6, 1.0), "grad_clip": (0.0, 1e6),
    "curriculum_steps": (0, 10**9), "curriculum_min": (1, 10**6), "transpose": (0, 12),
    "chroma_noise": (0.0, 1.0), "bridge_dropout": (0.0, 1.0), "seed": (0, 2**63 - 1),
    "checkpoint_every": (1, 10**9), "log_every": (1, 10**9), "max_steps": (0, 10**12), "max_minutes": (0.0, 1e7),
    "max_songs": (0, 10**7), "val_max_songs": (0, 10**7), "threads": (0, 4096), "extra_repeat": (1, 1000),
    "local_kernel": (1, 255), "block_kernel": (1, 255), "bar_silence": (0.0, 0.9),
}


def _check_fields(cfg) -> None:
    """Every field of the right type (a JSON config or a resumed run's file can hold anything) and in range."""
    for f in dataclasses.fields(cfg):
        value, kind = getattr(cfg, f.name), str(f.type)
        if kind.startswith("tuple"):
            ok = isinstance(value, (list, tuple)) and all(isinstance(x, str) for x in value)
            want = "a list of strings"
        elif kind == "bool":
            ok, want = isinstance(value, bool), "true or false"
        elif kind == "int":
            ok, want = isinstance(value, int) and not isinstance(value, bool), "an integer"
        elif kind == "float":
            ok, want = isinstance(value, (int, float)) and not isinstance(value, bool), "a number"
        else:  # str, or str | None
            ok = isinstance(value, str) or (value is None and "None" in kind)
            want = "a string" + (" or null" if "None" in kind else "")
        if ok and f.name in _RANGES and not isinstance(value, bool):
            lo, hi = _RANGES[f.name]
            ok = lo <= value <= hi and value == value  # NaN fails
            want = f"{want} in {lo}..{hi}"
        if not ok:
            shown = repr(value)
            err = StripeError(f"{f.name} must be {want}, not {shown if len(shown) <= 40 else shown[:40] + '...'}")
            err.field = f.name
            raise err


_DEVICE = re.compile(r"^(cpu|mps|cuda(:\d{1,3})?)$")


def resolve_device(name: str) -> torch.device:
    if not isinstance(name, str) or not (name == "auto" or _DEVICE.match(name)):
        raise StripeError(f"must be auto, cpu, cuda or cuda:N, not {str(name)[:40]!r}", "--device")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise StripeError("CUDA was asked for (--device cuda) but torch sees no GPU")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def model_config_for(cfg: TrainConfig):
    from .beat_tokens import FEATURE_SETS, N_OUT
    from .chords import N_CLASSES
    from .data.dataset import input_dim, position_dim
    from .model.transformer import ModelConfig

    beat = cfg.stage == "chord-beat"
    return ModelConfig(
        n_in=FEATURE_SETS[cfg.beat_features] if beat else input_dim(cfg.inputs),
        n_out=N_OUT if beat else 128 if cfg.stage == "accompaniment" else N_CLASSES,
        d_model=cfg.d_model,
        n_heads=cfg.n_heads,
        n_layers=cfg.n_layers,
        d_ff=cfg.d_ff,
        dropout=cfg.dropout,
        pe=cfg.pe,
        position_dim=1 if beat else position_dim(cfg.context),
        feature_map=cfg.feature_map,
        causal=cfg.causal,
        local_kernel=cfg.local_kernel,
        block_kernel=cfg.block_kernel,
    )


def load_encoded(cfg: TrainConfig, split: str, max_songs: int = 0, warn=None):
    """Songs of one split, encoded; missing or corrupt songs are skipped (and counted) by the loader.

    A POP909-layout folder is read by ``pop909.load_split``; any other folder as MIDI files with chords
    (``data/folder_data.py``), where ``warn(line)`` gets one line per skipped file.
    """
    from .data.folder_data import is_pop909_layout, load_folder_split
    from .data.pop909 import load_split
    from .encode import encode_song

    root = Path(cfg.data)
    if not root.is_dir():
        raise StripeError("no such data folder (expected a POP909-layout folder or a folder of MIDI files)", root)
    if not is_pop909_layout(root):
        loaded = load_folder_split(root, split, seed=cfg.seed, limit=max_songs, warn=warn)
        if not loaded.songs:
            raise StripeError(f"no usable songs in split {split!r} ({len(loaded.skipped)} files skipped; "
                              "see `stripe data check`)", root)
        return [encode_song(s) for s in loaded.songs]
    songs = load_split(root, split, structure_root=Path(cfg.structure) if cfg.structure else None,
                       chord_source="structure" if cfg.structure else "midi",
                       cache_dir=Path(cfg.cache) if cfg.cache else None, limit=max_songs or None)
    if not songs:
        raise StripeError(f"no usable songs in split {split!r}", root)
    return [encode_song(s) for s in songs]


def load_beat_songs(cfg: TrainConfig, split: str, max_songs: int = 0, warn=None):
    """Songs of one split as per-beat arrays in the frame of the key ``estimate_key`` gives their melody
    (what the pipeline does with a user's file). A POP909-layout folder gives chords from POP909-CL when
    ``cfg.cl`` is set, and the piano track's bass and chroma targets; a folder of MIDI files with chords
    (``data/folder_data.py``) gives chords only. ``cfg.extra_data``'s songs of the same split are added."""
    from .data.folder_data import is_pop909_layout

    if cfg.bridge_fill and not is_pop909_layout(Path(cfg.data)):
        raise StripeError("--bridge-fill needs a POP909-layout folder (songs with a BRIDGE track)", cfg.data)
    out = _beat_songs_of(Path(cfg.data), cfg, split, max_songs, warn)
    if cfg.extra_data:  # repeated in training only: validation counts every song once
        out += _beat_songs_of(Path(cfg.extra_data), cfg, split, 0, warn) * (cfg.extra_repeat if split == "train" else 1)
    if not out:
        raise StripeError(f"no usable songs in split {split!r}", cfg.data)
    return out


def _beat_songs_of(root: Path, cfg: TrainConfig, split: str, max_songs: int, warn) -> list:
    from .beat_tokens import encode_beats
    from .data.folder_data import is_pop909_layout, load_folder_split
    from .data.pop909 import load_split
    from .data.pop909_cl import song_cl_chords
    from .song import Song, fill_rests
    from .structure import estimate_key

    if not root.is_dir():
        raise StripeError("no such data folder (expected a POP909-layout folder or a folder of MIDI files)", root)
    if not is_pop909_layout(root):
        loaded = load_folder_split(root, split, seed=cfg.seed, limit=max_songs, warn=warn)
        return [encode_beats(s.melody, s.grid, estimate_key(Song(s.name, s.grid, s.melody)), s.chords, None, s.name,
                             feature_set=cfg.beat_features)
                for s in loaded.songs]
    songs = load_split(root, split, cache_dir=Path(cfg.cache) if cfg.cache else None, limit=max_songs or None)
    out = []
    for song in songs:
        chords = song.chords
        if cfg.cl:
            try:
                chords = song_cl_chords(Path(cfg.cl), root / song.name.rsplit("/", 1)[-1], song.grid)
            except StripeError as err:  # missing, without a chord track, or another arrangement: skip the song
                logging.getLogger(__name__).warning("skipping %s: %s", song.name, err)
                continue
        key = estimate_key(Song(song.name, song.grid, song.melody))
        out.append(encode_beats(song.melody, song.grid, key, chords, song.piano, song.name,
                                feature_set=cfg.beat_features))
        if cfg.bridge_fill and split == "train" and song.bridge:
            # more melodic lines over the same chords: the bridge (POP909's second melody) where the melody rests
            line = fill_rests(song.melody, song.bridge)
            key = estimate_key(Song(song.name, song.grid, line))
            out.append(encode_beats(line, song.grid, key, chords, song.piano, f"{song.name}+bridge",
                                    feature_set=cfg.beat_features))
    return out


_BEAT_ARRAYS = ("features", "rep", "chord", "bass", "chroma", "bar_of_beat")


def cached_beat_songs(path: Path, build, write: bool = True) -> list:
    """``build()``'s per-beat songs, saved to (when ``write``; the folder is made then, once the data
    has loaded) / read from one ``.npz`` (no pickle)."""
    import io

    import numpy as np

    from .beat_tokens import BeatSong
    from .io.atomic import atomic_write_bytes
    from .song import Key

    if path.exists():
        with np.load(path, allow_pickle=False) as z:
            z = {k: z[k] for k in z.files}  # each z[k] would read and inflate the whole array again
        cuts = np.cumsum(np.concatenate([[0], z["lengths"]]))
        return [BeatSong(str(name), *(z[k][a:b] for k in _BEAT_ARRAYS), Key(int(t), "minor" if m else "major"))
                for name, a, b, t, m in zip(z["names"], cuts[:-1], cuts[1:], z["tonic"], z["minor"], strict=True)]
    songs = build()
    if not write:
        return songs
    buf = io.BytesIO()
    np.savez(buf, names=np.array([s.name for s in songs]), lengths=np.array([s.n_beats for s in songs]),
             tonic=np.array([s.key.tonic for s in songs]), minor=np.array([s.key.mode == "minor" for s in songs]),
             **{k: np.concatenate([getattr(s, k) for s in songs]) for k in _BEAT_ARRAYS})
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buf.getvalue())
    return songs


def make_dataset(cfg: TrainConfig, encoded, train: bool):
    from .data.dataset import BeatWindowDataset, WindowDataset

    if cfg.stage == "chord-beat":
        return BeatWindowDataset(encoded, bars=cfg.bars, hop_bars=cfg.hop_bars if train else cfg.bars,
                                 context=cfg.context, jitter=cfg.window_jitter and train, seed=cfg.seed,
                                 bar_silence=cfg.bar_silence if train else 0.0)
    return WindowDataset(
        encoded, bars=cfg.bars, hop_bars=cfg.hop_bars if train else cfg.bars, stage=cfg.stage,
        context=cfg.context, inputs=cfg.inputs, transpose_range=cfg.transpose if train else 0,
        chroma_noise=cfg.chroma_noise if train else 0.0, seed=cfg.seed,
        bridge_dropout=cfg.bridge_dropout if train else 0.0,
    )


def batch_loss(cfg: TrainConfig, logits: torch.Tensor, batch: dict) -> torch.Tensor:
    """The stage's training loss on one batch (chord-beat: chords + ``aux_weight`` x (bass + chroma))."""
    if cfg.stage != "chord-beat":
        return stage_loss(cfg.stage, logits, batch["target"], batch["mask"])
    return beat_losses(logits, batch, cfg.aux_weight)[0]


def beat_losses(logits: torch.Tensor, batch: dict, aux_weight: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(total loss, chord loss) of the per-beat chord stage; unknown targets (-100, chroma < 0) are skipped."""
    from .beat_tokens import N_BASS
    from .chords import N_CLASSES

    chord = F.cross_entropy(logits[..., :N_CLASSES].transpose(1, 2), batch["target"])
    if not aux_weight:
        return chord, chord
    bass_logits = logits[..., N_CLASSES:N_CLASSES + N_BASS]
    bass = F.cross_entropy(bass_logits.transpose(1, 2), batch["bass"]) if (batch["bass"] >= 0).any() else 0.0
    chroma_t = batch["chroma"]
    known = ((chroma_t >= 0) & batch["mask"][..., None]).float()
    bce = F.binary_cross_entropy_with_logits(logits[..., N_CLASSES + N_BASS:], chroma_t.clamp(min=0), reduction="none")
    chroma = (bce * known).sum() / known.sum().clamp(min=1.0)
    return chord + aux_weight * (bass + chroma), chord


def stage_loss(stage: str, logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Masked mean loss: BCE over the 128 piano pitches, or cross-entropy over chord classes."""
    m = mask.float()
    if stage == "accompaniment":
        per_step = F.binary_cross_entropy_with_logits(logits, target, reduction="none").mean(-1)
    else:
        per_step = F.cross_entropy(logits.transpose(1, 2), target, reduction="none")
    return (per_step * m).sum() / m.sum().clamp(min=1.0)


def lr_at(cfg: TrainConfig, step: int, epoch: int) -> float:
    """Linear warmup, then a per-epoch exponential decay."""
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    return cfg.lr * cfg.lr_decay**epoch


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(n, generator=g).tolist()


def batches(dataset, order: list[int], batch_size: int):
    from .data.dataset import collate

    for i in range(0, len(order), batch_size):
        yield collate([dataset[j] for j in order[i : i + batch_size]])


def to_device(batch: dict, device: torch.device) -> dict:
    return {k: (v.to(device) if torch.is_tensor(v) else v) for k, v in batch.items()}


def crop(batch: dict, length: int) -> dict:
    """Length curriculum: keep the first ``length`` steps of every per-step tensor."""
    return {k: (v[:, :length] if torch.is_tensor(v) and v.dim() >= 2 else v) for k, v in batch.items()}


@torch.no_grad()
def validate(model, dataset, cfg: TrainConfig, device) -> dict:
    model.eval()
    total, weight, correct, counted = 0.0, 0.0, 0, 0
    for batch in batches(dataset, list(range(len(dataset))), cfg.batch_size):
        batch = to_device(batch, device)
        logits = model(batch["x"], batch["positions"], batch["mask"])
        if cfg.stage == "chord-beat":
            from .chords import N_CLASSES

            known = batch["target"] >= 0
            n = known.sum().item()
            total += beat_losses(logits, batch, 0.0)[1].item() * n
            correct += ((logits[..., :N_CLASSES].argmax(-1) == batch["target"]) & known).sum().item()
            weight += n
            counted += n
            continue
        n = batch["mask"].sum().item()
        total += stage_loss(cfg.stage, logits, batch["target"], batch["mask"]).item() * n
        weight += n
        if cfg.stage == "chord":
            hit = (logits.argmax(-1) == batch["target"]) & batch["mask"]
            correct += hit.sum().item()
            counted += n
    model.train()
    out = {"val_loss": total / max(weight, 1.0)}
    if cfg.stage == "chord":
        out["val_step_accuracy"] = correct / max(counted, 1)
    if cfg.stage == "chord-beat":
        out["val_beat_accuracy"] = correct / max(counted, 1)
    return out


# checkpoints -----------------------------------------------------------------------------------------


def save_checkpoint(run: Path, model, optimizer, state: dict, cfg: TrainConfig) -> None:
    from .model.checkpoint import save_model

    ckpt = run / "checkpoint"
    tmp = run / "checkpoint.tmp"
    if tmp.exists():
        _rmtree(tmp)
    tmp.mkdir(parents=True)
    save_model(model, tmp, extra={"train_config": dataclasses.asdict(cfg)})
    torch.save(
        {
            "optimizer": optimizer.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "python_rng": random.getstate(),
            **state,
        },
        tmp / "train_state.pt",
    )
    # swap in the new checkpoint as a whole: a kill at any moment leaves one complete checkpoint
    old = run / "checkpoint.old"
    if ckpt.exists():
        if old.exists():
            _rmtree(old)
        os.replace(ckpt, old)
    os.replace(tmp, ckpt)
    if old.exists():
        _rmtree(old)


# the only files stripe writes in a checkpoint/ or final/ folder: nothing else is ever deleted
_OURS = frozenset({"config.json", "model.safetensors", "train_state.pt"})


def _check_ours(path: Path) -> None:
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise StripeError("is not a folder stripe wrote; move it away", path)
    if path.is_dir():
        foreign = sorted(p.name for p in path.iterdir()
                         if not p.is_file() or p.is_symlink() or not (p.name in _OURS or p.name.startswith(TEMP_PREFIX)))
        if foreign:
            raise StripeError(f"holds files stripe did not write ({', '.join(foreign[:3])}); move them away first",
                              path)


def _rmtree(path: Path, strict: bool = False) -> None:
    """Remove a folder stripe made. ``strict`` (``final/``, where users look and may add files): only when it
    holds nothing but stripe's own files, else a one-line error. The scratch folders (``checkpoint.tmp``,
    ``checkpoint.old``, ``final.tmp``) are stripe's whole, whatever a kill left in them."""
    if not path.exists() and not path.is_symlink():
        return
    if not strict:
        import shutil

        if path.is_symlink() or not path.is_dir():
            raise StripeError("is not a folder stripe wrote; move it away", path)
        shutil.rmtree(path)
        return
    _check_ours(path)
    for p in path.iterdir():  # all ours: checked just above
        p.unlink()
    path.rmdir()


def _saved_config(cfg_path: Path, cfg: TrainConfig) -> TrainConfig:
    """The run's own train_config.json (validated by ``resume.saved_config``), with this call's
    out/device/threads."""
    from .resume import saved_config

    saved = saved_config(cfg_path.parent)
    if saved is None:
        raise StripeError("nothing to resume: no train_config.json", cfg_path.parent)
    saved.update({"out": cfg.out, "device": cfg.device, "threads": cfg.threads})
    try:
        return TrainConfig(**saved)
    except StripeError as err:
        raise StripeError(err.message, cfg_path) from None


def find_checkpoint(run: Path) -> Path | None:
    for name in ("checkpoint", "checkpoint.old"):  # .old survives a kill between the two renames
        if (run / name / "train_state.pt").exists():
            return run / name
    return None


def load_checkpoint(path: Path, model, optimizer) -> dict:
    from .model.checkpoint import FORMAT, load_model, read_config

    if read_config(path)[2] != FORMAT:  # the optimizer moments would not match migrated weights
        raise StripeError("checkpoint written by an older stripe: it can be used with --model but not "
                          "resumed; start a new run", path)
    loaded = load_model(path, device="cpu")
    model.load_state_dict(loaded.state_dict(), strict=True)
    try:
        state = torch.load(path / "train_state.pt", map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated or foreign file
        raise StripeError(f"cannot read training state ({err.__class__.__name__})", path / "train_state.pt") from None
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["torch_rng"])
    random.setstate(state["python_rng"])
    return state


# the loop --------------------------------------------------------------------------------------------


@dataclass
class TrainResult:
    run: Path
    steps: int
    epochs_done: int
    history: list[dict] = field(default_factory=list)


def train(cfg: TrainConfig, resume: bool = False, progress: bool = True, on_step=None) -> TrainResult:
    """Train one stage as configured. ``on_step(step)`` is a test hook called after each optimizer step.

    Under ``torchrun`` every rank calls this; ``distributed.DistContext`` splits the work (rank 0 alone
    writes the run folder, logs, validates and shows progress).
    """
    from .distributed import DistContext, maybe_compile, resolve_precision

    started = time.perf_counter()  # --max-minutes counts everything: loading, training, validation, saving
    run = Path(cfg.out)
    cfg_path = run / "train_config.json"
    if run.exists() and not run.is_dir():
        raise StripeError("is a file; --out names the run folder", run)
    if resume:
        cfg = _saved_config(cfg_path, cfg)
    elif run.exists() and any(run.iterdir()):
        raise StripeError("run folder exists and is not empty (use --resume to continue it, or another --out)", run)
    if resume:
        for name in ("final", "best", "checkpoint"):
            _check_ours(run / name)  # refused now, not deleted at the end of the run
        if find_checkpoint(run) is None and (run / "final").exists():
            raise StripeError("no checkpoint to resume from, and final/ holds a finished model that a new run "
                              "would replace; move final/ away or use another --out", run)
    if cfg.init and not resume:
        check_init(cfg)  # a wrong --init is refused before the data is read and the run folder made
    device = resolve_device(cfg.device)
    use_amp = resolve_precision(cfg.precision, device)
    maybe_compile(None, cfg.compile, device)  # refuse before anything is written
    ctx = DistContext.from_env(device)
    try:
        return _train(cfg, run, cfg_path, ctx, ctx.device(device), use_amp, resume, progress, on_step, started)
    finally:
        ctx.close()


def _train(cfg, run, cfg_path, ctx, device, use_amp, resume, progress, on_step, started) -> TrainResult:
    from .distributed import maybe_compile
    from .model.transformer import StructureTransformer

    ctx.check_batch(cfg.batch_size)
    ctx.barrier()  # every rank has checked the run folder before rank 0 writes into it
    ckpt = find_checkpoint(run) if resume else None

    # data, config and device are checked before anything is written: a failed start leaves no run folder
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)
    warn = _warn_line if ctx.is_main else (lambda line: None)
    if cfg.stage == "chord-beat":  # cached in the run folder: a resumed run skips the preprocessing
        with _status(progress and ctx.is_main, "loading the training songs"):
            train_songs = cached_beat_songs(run / "beats-train.npz",
                                            lambda: load_beat_songs(cfg, "train", cfg.max_songs, warn), ctx.is_main)
        with _status(progress and ctx.is_main, "loading the validation songs"):
            val_songs = cached_beat_songs(run / "beats-val.npz",
                                          lambda: load_beat_songs(cfg, "val", cfg.val_max_songs, warn), ctx.is_main)
    else:
        with _status(progress and ctx.is_main, "loading the training songs"):
            train_songs = load_encoded(cfg, "train", cfg.max_songs, warn=warn)
        with _status(progress and ctx.is_main, "loading the validation songs"):
            val_songs = load_encoded(cfg, "val", cfg.val_max_songs, warn=warn)
    train_set = make_dataset(cfg, train_songs, train=True)
    val_set = make_dataset(cfg, val_songs, train=False)

    net = StructureTransformer(model_config_for(cfg))
    if ckpt is None and cfg.init:  # before the run folder is made: a bad --init leaves nothing behind
        init_weights(net, cfg)
    net = net.to(device)
    model = net
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    step, epoch, batch_pos, history = 0, 0, 0, []
    if ctx.is_main:
        try:
            run.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise StripeError(f"cannot create the run folder ({err.strerror})", run) from None
        atomic_write_text(cfg_path, json.dumps(dataclasses.asdict(cfg), indent=2))
    if ckpt is not None:
        state = load_checkpoint(ckpt, model, optimizer)
        step, epoch, batch_pos, history = state["step"], state["epoch"], state["batch_pos"], state["history"]
        model.to(device)
    ctx.barrier()  # every rank has read the checkpoint before rank 0 may write the next one
    model = ctx.wrap(maybe_compile(net, cfg.compile, device), device)

    n_batches = math.ceil(len(train_set) / cfg.batch_size)
    total_steps = cfg.max_steps or cfg.epochs * n_batches
    log_file = (run / "log.jsonl").open("a") if ctx.is_main else _NullLog()
    bar = _progress(progress and ctx.is_main)
    deadline = started + 60 * cfg.max_minutes if cfg.max_minutes else None
    task = bar.add_task("training", total=total_steps, completed=step, info="", deadline=deadline) if bar else None
    loop_started, start_step = time.perf_counter(), step
    model.train()
    # time kept back for the work after the last step (a validation pass, the checkpoint, the final model):
    # estimated from the step time until a validation has been timed, then measured
    timing = {"validate": None, "save": 0.0}

    def reserve() -> float:
        per_step = (time.perf_counter() - loop_started) / max(step - start_step, 1)
        val = timing["validate"]
        if val is None:  # a forward pass over the val set costs about a third of a training step per batch
            val = per_step * math.ceil(len(val_set) / cfg.batch_size) / 3
        return val + 2 * timing["save"] + per_step

    def out_of_time() -> bool:  # every rank stops at the same step when any rank runs out of time
        return deadline is not None and ctx.agree(time.perf_counter() + reserve() > deadline)

    def timed_validate():
        if bar:
            bar.update(task, info="validating ...")
        t = time.perf_counter()
        out = _validate_main(ctx, net, val_set, cfg, device)
        timing["validate"] = time.perf_counter() - t
        return out

    def checkpoint_now():
        if ctx.is_main:
            save_checkpoint(run, net, optimizer,
                            {"step": step, "epoch": epoch, "batch_pos": batch_pos, "history": history}, cfg)
        ctx.barrier()

    try:
        if bar:
            bar.start()
        while epoch < cfg.epochs and step < total_steps and not out_of_time():
            train_set.set_epoch(epoch)  # fresh, reproducible augmentation draws per epoch
            order = epoch_order(len(train_set), cfg.seed, epoch)
            for i, batch in enumerate(ctx.batches(train_set, order, cfg.batch_size)):
                if i < batch_pos:
                    continue  # already trained on before the checkpoint we resumed from
                if step >= total_steps or out_of_time():
                    break
                if hasattr(net, "redraw_features"):
                    net.redraw_features()  # fresh FAVOR+ projections each training step
                if cfg.curriculum_steps:
                    from .data.dataset import curriculum_length

                    batch = crop(batch, curriculum_length(step, cfg.curriculum_min,
                                                          ctx.global_length(batch["x"].shape[1]),
                                                          cfg.curriculum_steps))
                batch = to_device(batch, device)
                lr = lr_at(cfg, step, epoch)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                    logits = model(batch["x"], batch["positions"], batch["mask"])
                if cfg.stage == "chord-beat":  # mean over the known beats of the batch
                    loss = batch_loss(cfg, logits.float(), batch)
                else:
                    loss_mask = batch.get("loss_mask", batch["mask"])  # DDP: padding repeats weigh nothing
                    loss = stage_loss(cfg.stage, logits.float(), batch["target"], loss_mask) * ctx.loss_scale(loss_mask)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                optimizer.step()
                step += 1
                batch_pos = i + 1
                if step % cfg.log_every == 0 or step == 1:
                    shown = ctx.mean(loss)  # the global batch's loss, whatever the number of ranks
                    rate = (step - start_step) / max(time.perf_counter() - loop_started, 1e-9)
                    rec = {"step": step, "epoch": epoch, "loss": round(shown, 5), "lr": lr,
                           "steps_per_s": round(rate, 3)}
                    log_file.write(json.dumps(rec) + "\n")
                    log_file.flush()
                    if bar:
                        bar.update(task, completed=step,
                                   info=f"loss {shown:.4f}  lr {lr:.2e}  {rate:.2f} steps/s")
                if bar:
                    bar.update(task, completed=step)
                if step % cfg.checkpoint_every == 0:
                    checkpoint_now()
                if on_step:
                    on_step(step)
            else:
                epoch += 1
                batch_pos = 0
                rec = {"epoch": epoch, "step": step, **timed_validate()}
                history.append(rec)
                log_file.write(json.dumps(rec) + "\n")
                log_file.flush()
                if bar:
                    bar.console.print(
                        "epoch " + str(epoch) + ": " + "  ".join(f"{k} {v:.4f}" for k, v in rec.items()
                                                               if isinstance(v, float)))
                t_save = time.perf_counter()
                if ctx.is_main and is_best(history):
                    save_final(net, run, "best", cfg, rec)
                if ctx.is_main and cfg.keep_epochs:  # per-beat validation does not always pick the best one
                    (run / "epochs").mkdir(exist_ok=True)
                    save_final(net, run, f"epochs/{epoch:02d}", cfg, rec)
                checkpoint_now()
                timing["save"] = time.perf_counter() - t_save
                continue
            break  # max_steps reached inside the epoch
        if not history or history[-1]["step"] != step:
            history.append({"epoch": epoch, "step": step, **timed_validate()})
            log_file.write(json.dumps(history[-1]) + "\n")
        checkpoint_now()
        if not ctx.is_main:
            return TrainResult(run, step, epoch, history)
        save_final(net.cpu(), run, "final", cfg, history[-1])
    finally:
        if bar:
            bar.stop()
        log_file.close()
    return TrainResult(run, step, epoch, history)


def init_stage_folder(cfg: TrainConfig) -> Path:
    """The folder of ``cfg.init`` that holds this stage's weights: the folder itself, or its stage subfolder
    when ``cfg.init`` is a whole harmonizer (``models/pop909-beat`` -> ``models/pop909-beat/chord``)."""
    folder = Path(cfg.init)
    if (folder / "config.json").is_file():
        return folder
    sub = folder / ("accompaniment" if cfg.stage == "accompaniment" else "chord")
    if (sub / "config.json").is_file():
        return sub
    raise StripeError("--init: no model here (expected config.json in it or in its chord/ or accompaniment/ "
                      "folder)", folder)


def check_init(cfg: TrainConfig) -> Path:
    """``cfg.init``'s stage folder, once its config says it has the architecture this run builds (dropout
    alone may differ, and a plain input projection may grow into a ``local_kernel`` convolution):
    checked from config.json before any data is read or anything is written."""
    from .model.checkpoint import read_config

    folder = init_stage_folder(cfg)
    have = dataclasses.replace(read_config(folder)[0], dropout=0.0)
    want = dataclasses.replace(model_config_for(cfg), dropout=0.0)
    if have.local_kernel == 1:
        have = dataclasses.replace(have, local_kernel=want.local_kernel)
    if want != have:
        diff = [f"{f.name} {getattr(have, f.name)!r} (run: {getattr(want, f.name)!r})"
                for f in dataclasses.fields(want) if getattr(want, f.name) != getattr(have, f.name)]
        raise StripeError("--init: the model's architecture differs from this run's: " + ", ".join(diff[:4]), folder)
    return folder


def init_weights(net, cfg: TrainConfig) -> None:
    """Load ``cfg.init``'s weights into ``net`` (strict): fine-tuning starts from a trained model. ``train``
    has run ``check_init`` on it before reading any data."""
    from .model.checkpoint import load_model

    state = load_model(init_stage_folder(cfg)).state_dict()
    conv = net.state_dict()["inp.weight"]
    if conv.dim() == 3 and state["inp.weight"].dim() == 2:
        # a plain projection grows into the centre tap of the convolution: the same function to start from
        widened = torch.zeros_like(conv)
        widened[:, :, conv.shape[-1] // 2] = state["inp.weight"]
        state["inp.weight"] = widened
    net.load_state_dict(state, strict=True)


def val_score(rec: dict) -> float:
    """Higher is better: the per-beat chord accuracy where there is one, else minus the val loss."""
    return rec["val_beat_accuracy"] if "val_beat_accuracy" in rec else -rec.get("val_loss", float("inf"))


def is_best(history: list[dict]) -> bool:
    """Whether the last validation is the best of the run so far (ties go to the earlier)."""
    scores = [val_score(r) for r in history if "val_loss" in r]
    return bool(scores) and scores[-1] > max(scores[:-1], default=float("-inf"))


def save_final(net, run: Path, name: str, cfg: TrainConfig, val: dict) -> None:
    """``run/name/``: the model as the pipeline loads it (written beside, then swapped in whole)."""
    from .model.checkpoint import save_model

    target, tmp = run / name, run / f"{name}.tmp"
    if tmp.exists():
        _rmtree(tmp)
    tmp.mkdir()
    was_training = net.training
    save_model(net, tmp, extra={**stage_meta(cfg), "train_config": dataclasses.asdict(cfg), "val": val})
    net.train(was_training)
    if target.exists():
        _rmtree(target, strict=True)
    os.replace(tmp, target)


def _validate_main(ctx, net, val_set, cfg, device) -> dict:
    """Rank 0 validates on the whole val split; the other ranks record nothing."""
    return validate(net, val_set, cfg, device) if ctx.is_main else {}


def _warn_line(line: str) -> None:
    import sys

    print(line, file=sys.stderr, flush=True)


class _NullLog:
    """The log file of ranks other than 0."""

    def write(self, text: str) -> None:
        pass

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def stage_meta(cfg: TrainConfig) -> dict:
    """What the pipeline needs to know to run a trained stage (``meta`` in its config.json)."""
    if cfg.stage == "chord-beat":
        from .beat_tokens import FEATURE_SETS

        return {"stage": "chord", "kind": "beat", "context": cfg.context, "bars": cfg.bars,
                "features": FEATURE_SETS[cfg.beat_features], "feature_set": cfg.beat_features}
    return {"stage": cfg.stage, "context": cfg.context, "inputs": list(cfg.inputs), "bars": cfg.bars}


def _progress(enabled: bool):
    if not enabled:
        return None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    class BudgetRemainingColumn(TimeRemainingColumn):
        """Time left: the steps' ETA, or the --max-minutes budget's end when that comes first."""

        def render(self, task):
            deadline = task.fields.get("deadline")
            if deadline is None:
                return super().render(task)
            from rich.text import Text

            left = deadline - time.perf_counter()
            eta = task.time_remaining
            left = max(0.0, left if eta is None else min(eta, left))
            return Text(f"{int(left // 3600)}:{int(left % 3600 // 60):02d}:{int(left % 60):02d}", style="progress.remaining")

    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    BudgetRemainingColumn(), TextColumn("{task.fields[info]}"))


def _status(enabled: bool, text: str):
    """A one-line spinner on stderr while ``text`` happens (loading data); nothing when not enabled."""
    import contextlib

    if not enabled:
        return contextlib.nullcontext()
    from rich.console import Console

    return Console(stderr=True).status(text + " ...")
