"""The harmonizer as a library: ``Harmonizer.load(...)`` then ``harmonizer(song, options)``.

Song -> structure labels -> tensors -> chord stage -> chords -> (BIN context) -> accompaniment stage
-> notes. The CLI only adds file handling around this.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .chords import N_CLASSES
from .decode import check_intro_outro, chord_span, decode_chords, density_probs, melody_span, roll_to_notes
from .errors import StripeError
from .hub import HarmonizerSpec, StageSpec
from .song import ChordSpan, Key, Note, Song


@dataclass
class HarmonizeOptions:
    key: Key | None = None  # None: estimate from the melody
    chords: list[ChordSpan] | None = None  # the user's chords: arrange only
    temperature: float = 0.0  # 0 = most likely chords; > 0 samples
    seed: int = 0
    density: float = 1.0  # accompaniment note odds multiplier
    accompaniment: bool = True
    harmonic_rhythm: str = "auto"  # where chords may change: auto (beat in four, else half), bar, half, beat
    intro_outro: str | None = None  # before the melody's first note / after its last: rest, play, auto; None: the model's


@dataclass
class HarmonizeResult:
    chords: list[ChordSpan]
    accompaniment: list[Note] | None
    key: Key
    key_source: str
    chord_source: str
    timings: dict = field(default_factory=dict)


@dataclass
class LoadedStage:
    model: torch.nn.Module
    meta: dict

    @property
    def context(self) -> str:
        return self.meta.get("context", "none")

    @property
    def inputs(self) -> tuple[str, ...]:
        return tuple(self.meta.get("inputs", ("melody", "bridge")))

    @property
    def kind(self) -> str:
        """``step`` (a class per 16th step, inputs per step) or ``beat`` (a token per beat, key-relative)."""
        return self.meta.get("kind", "step")

    @property
    def feature_set(self) -> str:
        """A per-beat stage's token features (``beat_tokens.FEATURE_SETS``; ``hub.read_meta`` checked it)."""
        return self.meta.get("feature_set", "base")


def _load_stage(spec: StageSpec | None, device: torch.device) -> LoadedStage | None:
    if spec is None:
        return None
    from .model.checkpoint import load_model

    model = load_model(spec.folder, device=str(device))
    model.eval()
    return LoadedStage(model, spec.meta)


def stage_sources(spec: HarmonizerSpec) -> dict[str, str]:
    """Where each stage's weights come from: ``--model`` may name one stage folder, the other then comes
    from the bundled model (``hub._from_local_folder`` writes ``"<folder> (<stage>) + <base>"``)."""
    out = {}
    mixed = " + " in spec.source and spec.source.split(" + ", 1)[0].endswith(")")
    for stage in ("chord", "accompaniment"):
        if getattr(spec, stage) is None:
            out[stage] = "none"
        elif mixed:
            named, base = spec.source.split(" + ", 1)
            out[stage] = named.rsplit(" (", 1)[0] if named.endswith(f"({stage})") else base
        else:
            out[stage] = spec.source
    for n, _ in enumerate(spec.chord_extra, start=2):  # an ensemble's further chord stages, from the same folder
        out[f"chord-{n}"] = out["chord"]
    return out


def structure_decoding(song: Song, decoding: dict, bar_rep: np.ndarray | None = None) -> dict:
    """``decode_chords`` keyword arguments from the melody and the decoding settings: the span that gets chords
    (``intro_outro``; N outside it), bar-repetition groups, cadence, learnt transitions. ``bar_rep``:
    ``melody_repetition(song)`` when the caller has it already (it is quadratic in the bars)."""
    from .decode import rep_beat_groups
    from .structure import _bar_tokens, melody_repetition

    grid = song.grid
    span = melody_span(song.melody)
    played = chord_span(song.melody, grid.bar_starts, song.n_steps, decoding.get("intro_outro", "play"))
    out: dict = {"transitions": decoding.get("transitions")}
    if decoding.get("melody_fit_weight"):
        from .metrics import melody_per_step

        out["melody_steps"] = melody_per_step(song.melody, song.n_steps)
        out["melody_fit_weight"] = decoding["melody_fit_weight"]
    if played is not None:
        out["melody_span"] = played
    if span is not None and decoding.get("cadence_weight"):
        out["cadence_weight"] = decoding["cadence_weight"]
        final = max(song.melody, key=lambda n: (n.end, n.start))
        out["final_note"] = (final.start, final.end)
    if decoding.get("phrase_cadence_weight"):
        from .structure import phrase_end_notes

        out["phrase_ends"] = phrase_end_notes(song)
        out["phrase_cadence_weight"] = decoding["phrase_cadence_weight"]
    if decoding.get("rep_weight") and grid.bar_starts and song.melody:
        has_notes = [bool(t) for t in _bar_tokens(song)]
        bar_rep = melody_repetition(song) if bar_rep is None else bar_rep
        out["rep_groups"] = rep_beat_groups(bar_rep, has_notes, grid.beat_starts, grid.bar_starts)
        out["rep_weight"] = decoding["rep_weight"]
    return out


def prior_weight(song: Song, decoding: dict) -> float:
    """The prior correction for ``song``: ``prior_weight``, scaled down for a melody of fewer bars than
    ``prior_full_bars`` (when that is set)."""
    full = decoding["prior_full_bars"]
    if not full or not song.melody:
        return decoding["prior_weight"]
    first, last = melody_span(song.melody)
    bars = np.asarray(song.grid.bar_starts or [0])
    n_bars = int(np.searchsorted(bars, last, side="left") - np.searchsorted(bars, first, side="right") + 1)
    return decoding["prior_weight"] * min(1.0, max(n_bars, 1) / full)


class Harmonizer:
    """Both stages, loaded once, ready to harmonize any number of songs."""

    def __init__(self, chord: LoadedStage, accompaniment: LoadedStage | None, decoding: dict, source: str,
                 device: torch.device, chord_extra: list[LoadedStage] | None = None):
        self.chord, self.accompaniment = chord, accompaniment
        self.decoding, self.source, self.device = decoding, source, device
        # the per-beat chord stages whose posteriors are averaged: chord/ and the folder's chord-2/, ...
        self.chord_members = [chord, *(chord_extra or [])]
        from .beat_tokens import FEATURE_SETS, N_OUT

        for member in self.chord_members:
            beat = member.kind == "beat"
            n_out = N_OUT if beat else N_CLASSES
            if member.model.config.n_out != n_out:
                raise StripeError(f"chord model has {member.model.config.n_out} outputs, expected {n_out}", source)
            # a per-beat stage's features: its config's meta names the set (older stages: "base")
            features = FEATURE_SETS[member.feature_set] if beat else None
            if beat and member.model.config.n_in != features:
                raise StripeError(f"per-beat chord model takes {member.model.config.n_in} features per beat, this "
                                  f"stripe makes {features} ({member.feature_set})", source)

    @classmethod
    def load(cls, model: str | None = None, device: str = "cpu") -> Harmonizer:
        from .hub import resolve
        from .train import resolve_device

        spec: HarmonizerSpec = resolve(model)
        dev = resolve_device(device)
        harmonizer = cls(_load_stage(spec.chord, dev), _load_stage(spec.accompaniment, dev), spec.decoding,
                         spec.source, dev, [_load_stage(extra, dev) for extra in spec.chord_extra])
        harmonizer.stage_sources = stage_sources(spec)
        return harmonizer

    # the two stages ----------------------------------------------------------------------------------

    def _features(self, enc, stage: LoadedStage, lo: int, hi: int) -> tuple[torch.Tensor, torch.Tensor]:
        from .data.dataset import window_features

        x, pos = window_features(enc, lo, hi, context=stage.context, inputs=stage.inputs)
        return x[None].to(self.device), pos[None].to(self.device)

    @torch.inference_mode()
    def chord_log_probs(self, enc, n_steps: int, bar_starts: list[int]) -> np.ndarray:
        """Per-step chord log-probabilities, from overlapping windows of the training length."""
        bars = int(self.chord.meta.get("bars", self.decoding["chord_window_bars"]))
        total = np.zeros((n_steps, N_CLASSES))
        weight = np.zeros((n_steps, 1))
        starts = bar_starts[:: max(1, bars // 2)] or [0]
        bounds = list(bar_starts) + [n_steps]
        for s in starts:
            i = bar_starts.index(s)
            lo, hi = s, bounds[min(i + bars, len(bounds) - 1)]
            x, pos = self._features(enc, self.chord, lo, hi)
            logp = torch.log_softmax(self.chord.model(x, pos)[0].float(), -1).cpu().numpy()
            # windows overlap by half: weight the middle of each window most (a triangle)
            w = np.minimum(np.arange(1, hi - lo + 1), np.arange(hi - lo, 0, -1)).astype(float)[:, None]
            total[lo:hi] += logp * w
            weight[lo:hi] += w
            if hi >= n_steps:
                break
        return total / np.maximum(weight, 1e-9)

    @torch.inference_mode()
    def chord_beat_log_probs(self, song: Song, key: Key, bar_rep: np.ndarray | None = None) -> np.ndarray:
        """Per-beat chord log-probabilities ``[n_beats, N_CLASSES]`` (absolute classes) of the per-beat chord
        stage, in ``key``'s frame, from overlapping windows of the training length (whole songs up to it). With
        more than one member (``chord-2/``, ...) their log-probabilities are averaged and renormalised: the
        normalised geometric mean of the members' posteriors."""
        from .beat_tokens import encode_beats, to_absolute

        tokens: dict = {}  # per feature set: members that read the same tokens share them
        rows = []
        for member in self.chord_members:
            if member.feature_set not in tokens:
                tokens[member.feature_set] = encode_beats(song.melody, song.grid, key, bar_rep=bar_rep,
                                                          feature_set=member.feature_set)
            rows.append(self._member_log_probs(member, tokens[member.feature_set]))
        mean = np.mean(rows, axis=0)
        if len(rows) > 1:
            mean = mean - np.logaddexp.reduce(mean, axis=1, keepdims=True)
        return to_absolute(mean, key.tonic)

    def _member_log_probs(self, member: LoadedStage, beats) -> np.ndarray:
        """One per-beat chord stage's key-relative log-probabilities of ``beats`` (a ``BeatSong``), its windows
        (overlapping by the ``beat_window_overlap`` setting's share) weighted towards their middles."""
        from .beat_tokens import bar_windows, beat_positions

        bars = int(member.meta.get("bars", 64))
        hop = max(1, round(bars * (1.0 - self.decoding["beat_window_overlap"])))
        total = np.zeros((beats.n_beats, N_CLASSES))
        weight = np.zeros((beats.n_beats, 1))
        for lo, hi in bar_windows(beats.bar_of_beat, bars, hop):
            x = torch.from_numpy(beats.features[lo:hi])[None].to(self.device)
            pos = torch.from_numpy(beat_positions(member.context, beats.rep[lo:hi]))[None].to(self.device)
            logits = member.model(x, pos)[0, :, :N_CLASSES].float()
            w = np.minimum(np.arange(1, hi - lo + 1), np.arange(hi - lo, 0, -1)).astype(float)[:, None]
            total[lo:hi] += torch.log_softmax(logits, -1).cpu().numpy() * w
            weight[lo:hi] += w
        return total / np.maximum(weight, 1e-9)

    def chord_step_log_probs(self, song: Song, key: Key, bar_rep: np.ndarray | None = None) -> np.ndarray:
        """Per-step chord log-probabilities ``[n_steps, N_CLASSES]`` whatever the chord stage's kind (a
        per-beat stage's rows repeated over each beat's steps, so averaging per beat gives them back)."""
        from .beat_tokens import beat_bounds

        if self.chord.kind != "beat":
            from .encode import encode_song

            return self.chord_log_probs(encode_song(song), song.n_steps, song.grid.bar_starts)
        rows = self.chord_beat_log_probs(song, key, bar_rep)
        out = np.zeros((song.n_steps, N_CLASSES))
        bounds = beat_bounds(song.grid.beat_starts, song.n_steps)
        if len(bounds):
            out[:] = rows[0]
            out[bounds[0, 0]:] = np.repeat(rows, bounds[:, 1] - bounds[:, 0], axis=0)
        return out

    def chord_posteriors(self, song: Song, key: Key) -> tuple[np.ndarray, np.ndarray | None]:
        """(per-step chord log-probabilities, the melody's bar repetition or None): the chord stage's
        output before decoding, which ``decode`` turns into chords."""
        from .structure import melody_repetition

        # the melody's bar repetition feeds the per-beat stage and the REP decoding: computed once
        need_rep = self.chord.kind == "beat" or self.decoding.get("rep_weight")
        bar_rep = melody_repetition(song) if need_rep else None
        logp = self.chord_step_log_probs(Song(song.name, song.grid, song.melody, song.bridge, key=key), key, bar_rep)
        return logp, bar_rep

    def decode(self, song: Song, key: Key, logp: np.ndarray, bar_rep: np.ndarray | None,
               decoding: dict | None = None, temperature: float = 0.0, seed: int | None = None,
               harmonic_rhythm: str = "auto") -> list[ChordSpan]:
        """Chords from ``chord_posteriors``' output with the model folder's decoding settings (``decoding``
        overrides them: the decoder sweep of ``benchmarks/decoder_sweep.py`` runs through here)."""
        from .decode import auto_harmonic_rhythm, change_points

        d = self.decoding if decoding is None else decoding
        grid = song.grid
        if harmonic_rhythm == "auto":
            harmonic_rhythm = auto_harmonic_rhythm(song.melody, grid.beat_starts, grid.bar_starts)
        structure = structure_decoding(song, d, bar_rep)
        # chords may also change where the no-chord intro and outro end and begin (with chords throughout: where
        # the melody does)
        played = structure.get("melody_span") or melody_span(song.melody)
        allowed = change_points(harmonic_rhythm, grid.beat_starts, grid.bar_starts, played)
        return decode_chords(
            logp, grid.beat_starts, grid.bar_starts, song.n_steps, key=key,
            change_penalty=d["change_penalty"], offbar_penalty=d["offbar_penalty"],
            none_penalty=d["none_penalty"], key_weight=d["key_weight"], prior_weight=prior_weight(song, d),
            temperature=temperature, rng=np.random.default_rng(seed), change_allowed=allowed,
            corpus_prior_weight=d["corpus_prior_weight"], **structure)

    @torch.inference_mode()
    def accompaniment_logits(self, enc, lo: int, hi: int) -> np.ndarray:
        """Piano-roll logits for steps ``lo:hi`` in one pass (a whole song: the model is length-agnostic)."""
        x, pos = self._features(enc, self.accompaniment, lo, hi)
        return self.accompaniment.model(x, pos)[0].float().cpu().numpy()

    def __call__(self, song: Song, options: HarmonizeOptions | None = None) -> HarmonizeResult:
        import time

        from .encode import encode_song
        from .structure import estimate_key

        opts = options or HarmonizeOptions()
        decoding = {**self.decoding, "intro_outro": check_intro_outro(opts.intro_outro) or self.decoding["intro_outro"]}
        timings = {}
        t0 = time.perf_counter()
        key, key_source = (opts.key, "given") if opts.key else (estimate_key(song), "estimated from the melody")
        grid = song.grid
        if opts.chords is not None:
            chords, chord_source = opts.chords, "given"
        else:
            logp, bar_rep = self.chord_posteriors(song, key)
            chords = self.decode(song, key, logp, bar_rep, decoding, temperature=opts.temperature, seed=opts.seed,
                                 harmonic_rhythm=opts.harmonic_rhythm)
            chord_source = "chord stage"
        timings["chords_s"] = time.perf_counter() - t0
        accompaniment = None
        if opts.accompaniment and self.accompaniment is not None:
            t1 = time.perf_counter()
            enc = encode_song(Song(song.name, grid, song.melody, song.bridge, chords=chords, key=key))
            logits = self.accompaniment_logits(enc, 0, song.n_steps)
            probs = density_probs(logits, opts.density)
            from .binarize import binarize_merge

            roll = binarize_merge(probs, self.decoding["threshold"], int(self.decoding["gap"]))
            span = chord_span(song.melody, grid.bar_starts, song.n_steps, decoding["intro_outro"])
            if span is not None:  # no accompaniment where there are no chords: before the melody, after it
                roll[:grid.beat_starts[int(np.searchsorted(grid.beat_starts, span[0], "right")) - 1]
                     if grid.beat_starts else 0] = 0
                roll[span[1]:] = 0
            accompaniment = roll_to_notes(roll, split_at=grid.bar_starts)
            timings["accompaniment_s"] = time.perf_counter() - t1
        return HarmonizeResult(chords, accompaniment, key, key_source, chord_source, timings)
