"""Training windows over encoded songs, as torch tensors (paper.md §2-§3).

An item is one window of ``bars`` bars: input features ``x``, positions for the chosen context
(TIME/REP/KEY/BIN or none), the target (piano roll for the accompaniment stage, chord classes for
the chord stage) and a mask. Random transposition and chord noise are drawn from a generator
seeded by (seed, epoch, index), so an epoch is reproducible whatever the loader's worker order.
"""

from __future__ import annotations

import numpy as np
import torch

from ..chords import N_CLASSES, chord_from_class
from ..encode import EncodedSong, shift_roll, transpose_classes
from ..structure import key_tokens, rep_tokens
from .pop909 import windows

CONTEXTS = ("none", "time", "rep", "key", "bin")
STAGES = ("accompaniment", "chord")
INPUT_BLOCKS = {"melody": 128, "bridge": 128, "chroma": 12, "meter": 16}
PAD_CHORD = -100  # padded chord targets: ignored by torch's cross-entropy default

# chroma of every chord class, for noised chords
_CLASS_CHROMA = np.array([chord_from_class(c).chroma for c in range(N_CLASSES)], dtype=np.uint8)


def position_dim(context: str) -> int:
    """Width of the ``positions`` tensor for a context."""
    if context not in CONTEXTS:
        raise ValueError(f"context must be one of {CONTEXTS}, not {context!r}")
    return 12 if context == "bin" else 1


def input_dim(inputs) -> int:
    """Width of ``x`` for a tuple of input block names."""
    unknown = [b for b in inputs if b not in INPUT_BLOCKS]
    if unknown or not inputs:
        raise ValueError(f"inputs must be a non-empty subset of {tuple(INPUT_BLOCKS)}, got {tuple(inputs)}")
    return sum(INPUT_BLOCKS[b] for b in inputs)


def positions_for(context: str, chord_class: np.ndarray, key_token: np.ndarray, chroma: np.ndarray) -> np.ndarray:
    """``[T, position_dim]`` float32 positions of one window (REP renumbered within the window)."""
    T = len(chord_class)
    position_dim(context)
    if context == "none":
        return np.zeros((T, 1), np.float32)
    if context == "time":
        return np.arange(T, dtype=np.float32)[:, None]
    if context == "rep":
        return rep_tokens(chord_class).astype(np.float32)[:, None]
    if context == "key":
        return np.asarray(key_token, dtype=np.float32)[:, None]
    return np.asarray(chroma, dtype=np.float32)


def meter_onehot(bar_position: np.ndarray) -> np.ndarray:
    """16-way one-hot of min(step in bar, 15)."""
    idx = np.minimum(np.asarray(bar_position, dtype=np.int64), 15)
    out = np.zeros((len(idx), 16), np.float32)
    out[np.arange(len(idx)), idx] = 1.0
    return out


def curriculum_length(step: int, min_len: int, max_len: int, steps: int) -> int:
    """Length curriculum (paper.md §2): min + (max-min)·step//steps up to ``steps``, then max."""
    if steps <= 0 or step >= steps:
        return max_len
    return min_len + (max_len - min_len) * max(0, step) // steps


def _chord_runs(classes: np.ndarray) -> list[tuple[int, int]]:
    change = np.flatnonzero(np.diff(classes)) + 1
    edges = np.concatenate([[0], change, [len(classes)]])
    return list(zip(edges[:-1].tolist(), edges[1:].tolist(), strict=False))


class WindowDataset(torch.utils.data.Dataset):
    """Fixed-length bar windows of encoded songs.

    ``transpose_range=k`` draws a shift in [-k, k] per item; ``chroma_noise=p`` replaces each chord
    span of the window's *context* (positions and the ``chroma`` input block, never the target) by a
    random non-N vocabulary chord with probability p, to mimic predicted chords at inference.
    ``bridge_dropout=p`` blanks the bridge (second melody) input of a window with probability p.
    Call ``set_epoch`` each epoch for fresh draws.
    """

    def __init__(
        self,
        encoded_songs: list[EncodedSong],
        bars: int = 16,
        hop_bars: int = 4,
        stage: str = "accompaniment",
        context: str = "bin",
        inputs: tuple[str, ...] = ("melody", "bridge"),
        transpose_range: int = 0,
        chroma_noise: float = 0.0,
        seed: int = 0,
        bridge_dropout: float = 0.0,
    ):
        if stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}, not {stage!r}")
        position_dim(context)
        input_dim(inputs)
        if not 0.0 <= chroma_noise <= 1.0:
            raise ValueError("chroma_noise is a probability")
        self.songs = list(encoded_songs)
        self.stage, self.context, self.inputs = stage, context, tuple(inputs)
        self.transpose_range, self.chroma_noise = int(transpose_range), float(chroma_noise)
        self.seed, self.epoch = int(seed), 0
        self.bridge_dropout = float(bridge_dropout)
        self.index: list[tuple[int, int, int]] = []
        self.n_short = 0
        for i, enc in enumerate(self.songs):
            for w in windows(enc, bars, hop_bars):
                self.index.append((i, w.start, w.end))
                self.n_short += bool(w.short)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    @property
    def n_positions(self) -> int:
        return position_dim(self.context)

    @property
    def n_inputs(self) -> int:
        return input_dim(self.inputs)

    def __len__(self) -> int:
        return len(self.index)

    def _generator(self, idx: int) -> torch.Generator:
        g = torch.Generator()
        g.manual_seed(((self.seed * 1_000_003 + self.epoch) * 10_000_019 + idx) % 2**63)
        return g

    def __getitem__(self, idx: int) -> dict:
        song_i, lo, hi = self.index[idx]
        enc = self.songs[song_i]
        g = self._generator(idx)
        shift = 0
        if self.transpose_range > 0:
            shift = int(torch.randint(-self.transpose_range, self.transpose_range + 1, (1,), generator=g))
        melody = shift_roll(enc.melody_roll[lo:hi], shift)
        bridge = shift_roll(enc.bridge_roll[lo:hi], shift)
        if self.bridge_dropout > 0 and float(torch.rand((), generator=g)) < self.bridge_dropout:
            bridge = np.zeros_like(bridge)  # users' files rarely have a second melody: learn without it too
        chroma = np.roll(enc.chroma[lo:hi], shift, axis=1)
        classes = transpose_classes(enc.chord_class[lo:hi], shift)
        keytok = enc.key_token[lo:hi]

        # context chords: the true ones, or with some spans replaced (the target stays true)
        ctx_classes, ctx_chroma, ctx_key = classes, chroma, keytok
        if self.chroma_noise > 0:
            ctx_classes, ctx_chroma = classes.copy(), chroma.copy()
            for a, b in _chord_runs(classes):
                if float(torch.rand((), generator=g)) < self.chroma_noise:
                    c = int(torch.randint(1, N_CLASSES, (1,), generator=g))
                    ctx_classes[a:b] = c
                    ctx_chroma[a:b] = _CLASS_CHROMA[c]
            ctx_key = key_tokens(ctx_classes, _shifted_key(enc, shift))

        x, positions = build_features(self.inputs, self.context, melody, bridge, ctx_chroma,
                                      enc.bar_position[lo:hi], ctx_classes, ctx_key)
        if self.stage == "accompaniment":
            target = torch.from_numpy(shift_roll(enc.piano_roll[lo:hi], shift).astype(np.float32))
        else:
            target = torch.from_numpy(classes.astype(np.int64))
        T = hi - lo
        return {
            "x": torch.from_numpy(x),
            "positions": torch.from_numpy(positions),
            "target": target,
            "mask": torch.ones(T, dtype=torch.bool),
            "melody_roll": torch.from_numpy(melody.astype(np.float32)),
            "chroma": torch.from_numpy(chroma.astype(np.float32)),
            "name": enc.name,
            "start": lo,
            "shift": shift,
        }


def build_features(inputs, context, melody, bridge, chroma, bar_position, classes, key_token):
    """Model input ``x [T, input_dim]`` and ``positions [T, position_dim]`` of one window (numpy)."""
    blocks = []
    for name in inputs:
        if name == "melody":
            blocks.append(melody.astype(np.float32))
        elif name == "bridge":
            blocks.append(bridge.astype(np.float32))
        elif name == "chroma":
            blocks.append(chroma.astype(np.float32))
        else:
            blocks.append(meter_onehot(bar_position))
    return np.concatenate(blocks, axis=1), positions_for(context, classes, key_token, chroma)


def window_features(enc: EncodedSong, lo: int, hi: int, context: str, inputs) -> tuple[torch.Tensor, torch.Tensor]:
    """Inference-time features of steps ``lo:hi`` of a song (no augmentation), as torch tensors."""
    x, positions = build_features(tuple(inputs), context, enc.melody_roll[lo:hi], enc.bridge_roll[lo:hi],
                                  enc.chroma[lo:hi], enc.bar_position[lo:hi], enc.chord_class[lo:hi],
                                  enc.key_token[lo:hi])
    return torch.from_numpy(x), torch.from_numpy(positions)


def _shifted_key(enc: EncodedSong, shift: int):
    from ..song import Key

    if enc.key is None:
        return None
    return Key((enc.key.tonic + shift) % 12, enc.key.mode)


def collate(items: list[dict]) -> dict:
    """Stack items, padding to the longest window; ``mask`` is False on padding.

    Padded chord (and bass) targets are ``PAD_CHORD`` (-100); everything else pads with zeros.
    """
    if not items:
        raise ValueError("empty batch")
    T = max(len(it["mask"]) for it in items)
    out: dict = {}
    for k, v in items[0].items():
        if isinstance(v, torch.Tensor):
            fill = PAD_CHORD if (k in ("target", "bass") and v.dtype == torch.int64) else 0
            padded = []
            for it in items:
                t = it[k]
                pad = T - t.shape[0]
                if pad:
                    t = torch.cat([t, torch.full((pad, *t.shape[1:]), fill, dtype=t.dtype)], dim=0)
                padded.append(t)
            out[k] = torch.stack(padded)
        else:
            out[k] = [it[k] for it in items]
    return out


class BeatWindowDataset(torch.utils.data.Dataset):
    """Windows of ``bars`` bars of per-beat songs (``beats.BeatSong``) for the per-beat chord stage.

    An item: ``x [B, N_FEATURES]``, ``positions [B, 1]`` (TIME or REP, renumbered per window), the
    key-relative chord ``target``, the piano ``bass`` class and ``chroma`` (auxiliary targets) and
    ``mask``. Songs are in their key's frame already, so there is no transposition to draw; ``bar_silence``
    (training) takes the melody out of a random share of the bars.
    """

    def __init__(self, songs, bars: int = 64, hop_bars: int = 16, context: str = "time", jitter: bool = False,
                 seed: int = 0, bar_silence: float = 0.0):
        from ..beat_tokens import BEAT_CONTEXTS

        if context not in BEAT_CONTEXTS:
            raise ValueError(f"context must be one of {BEAT_CONTEXTS} for the per-beat chord stage, not {context!r}")
        self.songs, self.context = list(songs), context
        self.bars, self.hop_bars, self.jitter, self.seed = bars, hop_bars, jitter, seed
        self.bar_silence, self.epoch = bar_silence, 0
        self.index = self._windows(0)

    def _windows(self, offset: int) -> list[tuple[int, int, int]]:
        """(song, first beat, end beat) of every window, the window starts moved ``offset`` bars later (the
        bars before the first start join the first window)."""
        from ..beat_tokens import bar_windows

        return [(i, lo, hi) for i, s in enumerate(self.songs)
                for lo, hi in bar_windows(np.maximum(s.bar_of_beat - offset, 0), self.bars, self.hop_bars)]

    def set_epoch(self, epoch: int) -> None:
        """``jitter``: every epoch cuts the songs at other bars (a seeded offset below ``hop_bars``), so the
        model sees each passage at other places of its window. ``bar_silence``: each epoch silences other bars."""
        self.epoch = epoch
        if self.jitter:
            self.index = self._windows(int(np.random.default_rng([self.seed, epoch]).integers(self.hop_bars)))

    def __len__(self) -> int:
        return len(self.index)

    def _silence_bars(self, x: np.ndarray, bar_of_beat: np.ndarray, idx: int) -> np.ndarray:
        """The window's tokens with the melody of a random ``bar_silence`` share of its bars taken out
        (seeded by seed, epoch and item): the targets stay, so the model learns the chords of the bars where
        the melody rests from the bars around them, as it must between a song's phrases."""
        from ..beat_tokens import silence_beats

        bars = np.unique(bar_of_beat)
        rng = np.random.default_rng([self.seed, self.epoch, idx])
        chosen = bars[rng.random(len(bars)) < self.bar_silence]
        return silence_beats(x, np.isin(bar_of_beat, chosen)) if len(chosen) else x

    def __getitem__(self, idx: int) -> dict:
        from ..beat_tokens import beat_positions

        i, lo, hi = self.index[idx]
        s = self.songs[i]
        x = s.features[lo:hi]
        if self.bar_silence > 0:
            x = self._silence_bars(x, s.bar_of_beat[lo:hi], idx)
        return {
            "x": torch.from_numpy(x),
            "positions": torch.from_numpy(beat_positions(self.context, s.rep[lo:hi])),
            "target": torch.from_numpy(s.chord[lo:hi]),
            "bass": torch.from_numpy(s.bass[lo:hi]),
            "chroma": torch.from_numpy(s.chroma[lo:hi]),
            "mask": torch.ones(hi - lo, dtype=torch.bool),
            "name": s.name,
            "start": lo,
        }
