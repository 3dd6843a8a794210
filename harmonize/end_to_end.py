"""``stripe eval --end-to-end``: what a user gets from ``stripe harmonize`` on a melody-only MIDI file.

``stripe eval`` scores the chord stage on the *annotated* beat grid of POP909. A user's file has no
annotations: stripe finds the melody, the grid, the key and the chords from the file alone. Here, for
each song of a split:

1. the song's MELODY track alone is written to a temporary MIDI file, in two variants:
   - ``raw``: the song's own MIDI timing (POP909's files follow the audio: the tempo is right, but the
     tick grid is offset from the real beats and bar lines fall anywhere);
   - ``grid``: the melody re-timed so that annotated beat k falls exactly on MIDI beat k + P at one
     constant tempo, the first annotated downbeat starting a bar (what a DAW or notation export gives);
2. the file goes through exactly the code path of ``stripe harmonize``: ``commands.read_input_song``
   (the reader the CLI uses) and the ``Harmonizer`` the model folder describes, chords only; the HMM
   baseline (``baseline.harmonize_song``) gets the same song (the file's grid, the key estimated
   from the melody), never the annotations;
3. the output chords, on the file's grid, are mapped to seconds and scored per *annotated* beat
   (``beat_midi.txt``): each annotated beat takes the predicted chord that covers most of it, and the
   reference is ``chord_midi.txt`` on the annotated grid, so every metric of ``stripe eval``'s chord
   table (root, root + maj/min and class accuracy, CHE, CC, CTD, CTnCTR, PCS, MCTD) is computed the
   same way, on the annotated melody.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .errors import StripeError
from .song import ChordSpan, Grid, Song

VARIANTS = ("raw", "grid")
LABELS = ("pop909", "cl")
SYSTEMS = ("model", "baseline")
GRID_RESOLUTION = 480  # ticks per beat of the re-timed files
SAMPLES_PER_BEAT = 8  # points per annotated beat at which the predicted chord is read


# ------------------------------------------------------------------------------------ input files


def _melody_notes(midi_path: Path):
    """The MELODY track's notes (pretty_midi, seconds) of a POP909 file."""
    from .data.pop909 import _read_tracks

    return _read_tracks(midi_path)["MELODY"]


def write_raw_melody(midi_path: Path, out: Path) -> Path:
    """The file's MELODY track alone, with its tempo map and meter untouched (tracks without notes are
    kept, so the conductor track stays; every other track with notes is dropped)."""
    import mido

    try:
        mid = mido.MidiFile(str(midi_path))
    except Exception as e:  # mido raises many types on corrupt files
        raise StripeError(f"cannot read MIDI ({type(e).__name__}: {e})", midi_path) from e
    kept = mido.MidiFile(type=mid.type, ticks_per_beat=mid.ticks_per_beat)
    found = False
    for track in mid.tracks:
        has_notes = any(m.type == "note_on" for m in track)
        if track.name.strip().upper() == "MELODY":
            found = True
        if not has_notes or track.name.strip().upper() == "MELODY":
            kept.tracks.append(track)
    if not found:
        raise StripeError("no MELODY track", midi_path)
    kept.save(str(out))
    return out


def beat_position(times, beat_times: np.ndarray) -> np.ndarray:
    """Seconds -> fractional annotated-beat index (linear between beats, the edge beat length outside)."""
    t = np.asarray(times, dtype=np.float64)
    k = np.arange(len(beat_times), dtype=np.float64)
    pos = np.interp(t, beat_times, k)
    first, last = beat_times[1] - beat_times[0], beat_times[-1] - beat_times[-2]
    pos = np.where(t < beat_times[0], (t - beat_times[0]) / first, pos)
    return np.where(t > beat_times[-1], k[-1] + (t - beat_times[-1]) / last, pos)


def grid_offset(bar_flags: np.ndarray, beats_per_bar: int, first_position: float) -> int:
    """P of "annotated beat k falls on MIDI beat k + P": the first annotated downbeat lands on a bar
    line (a multiple of ``beats_per_bar``) and no note (first at ``first_position`` beats) before beat 0."""
    downbeats = np.flatnonzero(bar_flags)
    d0 = int(downbeats[0]) if len(downbeats) else 0
    p = (-d0) % beats_per_bar
    while first_position + p < 0:
        p += beats_per_bar
    return p


@dataclass(frozen=True)
class GridTiming:
    """How ``write_grid_melody`` re-timed a song: annotated beat k is MIDI beat k + ``offset``, each MIDI beat
    lasts ``beat_s`` seconds (the tempo written to the file)."""

    beat_times: np.ndarray
    offset: int
    beat_s: float

    def to_file_seconds(self, seconds) -> np.ndarray:
        """Annotated (original) seconds -> seconds of the re-timed file."""
        return (beat_position(seconds, self.beat_times) + self.offset) * self.beat_s

    def to_annotated_seconds(self, seconds) -> np.ndarray:
        """Seconds of the re-timed file -> annotated (original) seconds."""
        k = np.asarray(seconds, dtype=np.float64) / self.beat_s - self.offset
        bt = self.beat_times
        n = np.arange(len(bt), dtype=np.float64)
        inside = np.interp(k, n, bt)
        first, last = bt[1] - bt[0], bt[-1] - bt[-2]
        inside = np.where(k < 0, bt[0] + k * first, inside)
        return np.where(k > n[-1], bt[-1] + (k - n[-1]) * last, inside)


def write_grid_melody(midi_path: Path, beat_times: np.ndarray, bar_flags: np.ndarray, beats_per_bar: int,
                      out: Path) -> GridTiming:
    """The MELODY re-timed onto a clean grid: annotated beat k at MIDI beat k + P, one constant tempo
    (the median annotated beat length), meter ``beats_per_bar``/4 from tick 0. Returns the timing."""
    import mido

    notes = [n for n in _melody_notes(midi_path) if n.end > n.start]
    if not notes:
        raise StripeError("MELODY track has no notes", midi_path)
    starts = beat_position([n.start for n in notes], beat_times)
    ends = beat_position([n.end for n in notes], beat_times)
    p = grid_offset(bar_flags, beats_per_bar, float(starts.min()))
    tempo_us = max(1, round(float(np.median(np.diff(beat_times))) * 1e6))
    on = np.round((starts + p) * GRID_RESOLUTION).astype(np.int64)
    off = np.maximum(np.round((ends + p) * GRID_RESOLUTION).astype(np.int64), on + 1)
    events = [(int(a), 1, mido.Message("note_on", note=int(n.pitch), velocity=max(1, int(n.velocity))))
              for a, n in zip(on, notes, strict=True)]
    events += [(int(b), 0, mido.Message("note_off", note=int(n.pitch), velocity=0))
               for b, n in zip(off, notes, strict=True)]
    mid = mido.MidiFile(type=1, ticks_per_beat=GRID_RESOLUTION)
    conductor = mido.MidiTrack([
        mido.MetaMessage("set_tempo", tempo=tempo_us, time=0),
        mido.MetaMessage("time_signature", numerator=beats_per_bar, denominator=4, time=0),
    ])
    track = mido.MidiTrack([mido.MetaMessage("track_name", name="MELODY", time=0)])
    now = 0
    for tick, _order, msg in sorted(events, key=lambda e: (e[0], e[1])):  # note-offs before note-ons
        track.append(msg.copy(time=tick - now))
        now = tick
    mid.tracks.extend([conductor, track])
    mid.save(str(out))
    return GridTiming(np.asarray(beat_times, dtype=np.float64), p, tempo_us / 1e6)


# ------------------------------------------------------------------------------------------ scoring


def chords_per_annotated_step(spans: Sequence[ChordSpan], grid: Grid, annotated: Grid) -> list:
    """Predicted chords (spans on ``grid``, the file's) as one chord per step of ``annotated``: each
    annotated beat takes the chord heard over most of it (``SAMPLES_PER_BEAT`` points, ties to the
    earliest), and all its steps carry that chord."""
    from .chords import NO_CHORD
    from .structure import chords_per_step

    per_step = chords_per_step(list(spans), grid.n_steps)
    times = annotated.step_times
    bounds = list(annotated.beat_starts) + [annotated.n_steps]
    out = [NO_CHORD] * annotated.n_steps
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        if hi <= lo:
            continue
        t0, t1 = times[lo], times[hi]
        points = t0 + (np.arange(SAMPLES_PER_BEAT) + 0.5) * (t1 - t0) / SAMPLES_PER_BEAT
        # the step of the file's grid each point falls in; outside the grid: no chord
        idx = np.searchsorted(grid.step_times, points, side="right") - 1
        heard = [per_step[i] if 0 <= i < grid.n_steps else NO_CHORD for i in idx]
        best = max(heard, key=lambda c: (heard.count(c), -heard.index(c)))
        out[lo:hi] = [best] * (hi - lo)
    return out


# ------------------------------------------------------------------------------------------ the eval


def read_variant(song_dir: Path, variant: str, workdir: Path, grid: str = "auto") -> tuple[Song, Grid]:
    """One song's melody-only file of ``variant`` (written to ``workdir``), read exactly as `stripe harmonize`
    reads it (its grid, then its bar lines: an upbeat), and that grid in the annotations' seconds (the grid
    file was re-timed: mapped back) for scoring against the annotated beats."""
    from .commands import read_input_song
    from .data.pop909 import read_beats
    from .pickup import apply_pickup

    song_dir = Path(song_dir)
    midi_path = song_dir / f"{song_dir.name}.mid"
    path = Path(workdir) / f"{song_dir.name}-{variant}.mid"
    timing = None
    if variant == "raw":
        write_raw_melody(midi_path, path)
    elif variant == "grid":
        timing = write_grid_melody(midi_path, *read_beats(song_dir / "beat_midi.txt"), path)
    else:
        raise ValueError(f"variant must be one of {VARIANTS}, not {variant!r}")
    song = apply_pickup(read_input_song(path, grid=grid), None)[0]
    file_grid = song.grid if timing is None else \
        replace(song.grid, step_times=timing.to_annotated_seconds(song.grid.step_times))
    return song, file_grid


def evaluate_song(song_dir: Path, annotated: Song, harmonizer, variants: Sequence[str] = VARIANTS,
                  systems: Sequence[str] = SYSTEMS, workdir: Path | None = None, grid: str = "auto",
                  reference: list[ChordSpan] | None = None, intro_outro: str | None = None) -> dict:
    """``{variant: {system: metrics}, "grid_source": {variant: "file" | "notes"}}`` for one POP909 song
    folder; ``annotated`` is its loaded ``Song``; ``grid`` is ``stripe harmonize --grid``; ``reference``: the
    chords to score against, on the annotated grid (default: the song's own, ``chord_midi.txt``);
    ``intro_outro``: ``stripe harmonize --intro-outro`` (None: the model's setting)."""
    from .baseline import harmonize_song
    from .metrics import harmonization_metrics, melody_per_step
    from .pipeline import HarmonizeOptions
    from .structure import chords_per_step

    melody = melody_per_step(annotated.melody, annotated.n_steps)
    ref = chords_per_step(annotated.chords if reference is None else reference, annotated.n_steps)
    out: dict = {}
    sources: dict[str, str] = {}
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        for variant in variants:
            song, file_grid = read_variant(song_dir, variant, Path(tmp), grid)
            sources[variant] = song.grid_source
            rows = {}
            for system in systems:
                if system == "model":
                    spans = harmonizer(song, HarmonizeOptions(accompaniment=False, intro_outro=intro_outro)).chords
                elif system == "baseline":
                    spans = harmonize_song(song)
                else:
                    raise ValueError(f"system must be one of {SYSTEMS}, not {system!r}")
                pred = chords_per_annotated_step(spans, file_grid, annotated.grid)
                rows[system] = harmonization_metrics(melody, pred, ref_chords=ref)
            out[variant] = rows
    out["grid_source"] = sources
    return out


def evaluate_end_to_end(
    data: str | Path,
    split: str = "val",
    model: str | None = None,
    songs: int = 0,
    variants: Sequence[str] = VARIANTS,
    systems: Sequence[str] = SYSTEMS,
    device: str = "cpu",
    harmonizer=None,
    cache: str | Path | None = None,
    progress: bool | Callable[[int, int], None] = False,
    grid: str = "auto",
    labels: str = "pop909",
    cl_data: str | Path | None = None,
    intro_outro: str | None = None,
) -> dict:
    """The end-to-end chord figures of a POP909 split, as JSON-able data.

    ``songs``: only the first N songs of the split (0: all). ``harmonizer``: an already loaded
    ``Harmonizer`` (else ``Harmonizer.load(model, device)``). ``cache``: the POP909 song cache folder
    (None: the default one). ``grid``: how the files are read, as ``stripe harmonize --grid`` (auto,
    file, notes). ``labels``: score against POP909's chords (``pop909``, ``chord_midi.txt``) or POP909-CL's
    corrected ones (``cl``; ``cl_data``, default ``<data>/../pop909-cl``; songs that cannot be aligned are
    skipped), the "human" row then scoring POP909's chords against them. ``intro_outro``: as ``stripe harmonize
    --intro-outro`` (None: the model's setting). ``progress``: True for a rich progress bar on stderr, or a callable
    ``(done, total)``. Returns ``{"config", "model", "counts", "end_to_end": {variant: {system:
    metrics}}, "human": metrics of the annotations, "per_song": [...]}``.
    """
    from .data.pop909 import load_song_cached, split_song_ids
    from .evaluate import _mean_dicts as _mean_rows
    from .pipeline import Harmonizer

    root = Path(data)
    if not root.is_dir():
        raise StripeError("no such data folder (expected a POP909-layout folder)", root)
    bad = [v for v in variants if v not in VARIANTS] + [s for s in systems if s not in SYSTEMS]
    if bad or not variants or not systems:
        raise StripeError(f"variants must be among {', '.join(VARIANTS)} and systems among {', '.join(SYSTEMS)}")
    if labels not in LABELS:
        raise StripeError(f"--labels must be one of {', '.join(LABELS)}, not {labels!r}")
    from .decode import check_intro_outro

    check_intro_outro(intro_outro)
    cl_root = None
    if labels == "cl":
        cl_root = Path(cl_data) if cl_data is not None else root.parent / "pop909-cl"
        if not (cl_root / "POP909_processed").is_dir():
            raise StripeError("no POP909-CL folder here (expected POP909_processed/ inside)", cl_root)
    ids = [i for i in split_song_ids(split, root) if (root / f"{i:03d}").is_dir()]
    if songs:
        ids = ids[:songs]
    if not ids:
        raise StripeError(f"no songs of split {split!r} under this folder", root)
    if "model" in systems and harmonizer is None:
        harmonizer = Harmonizer.load(model, device=device)

    rows: dict[str, dict[str, list[dict]]] = {v: {s: [] for s in systems} for v in variants}
    human: list[dict] = []
    per_song: list[dict] = []
    skipped: list[dict] = []
    bar, tick = _progress(progress, len(ids))
    try:
        for i in ids:
            song_dir = root / f"{i:03d}"
            try:
                annotated = load_song_cached(song_dir, cache_dir=None if cache is None else Path(cache))
                reference = None
                if cl_root is not None:
                    from .data.pop909_cl import song_cl_chords

                    reference = song_cl_chords(cl_root, song_dir, annotated.grid)
                result = evaluate_song(song_dir, annotated, harmonizer, variants, systems, grid=grid,
                                       reference=reference, intro_outro=intro_outro)
            except StripeError as e:  # a broken song folder is reported, not fatal
                skipped.append({"song": i, "error": str(e)})
                tick()
                continue
            from .metrics import harmonization_metrics, melody_per_step

            human.append(harmonization_metrics(melody_per_step(annotated.melody, annotated.n_steps),
                                               annotated.chords,
                                               ref_chords=annotated.chords if reference is None else reference))
            grid_sources = result.pop("grid_source")
            for v, by_system in result.items():
                for s, metrics in by_system.items():
                    rows[v][s].append(metrics)
            per_song.append({"song": i, "grid_source": grid_sources,
                             **{v: {s: round(m["acc_majmin"], 4) for s, m in r.items()} for v, r in result.items()}})
            tick()
    finally:
        if bar is not None:
            bar.stop()
    if not per_song:
        raise StripeError(f"no usable songs in split {split!r}", root)
    return {
        "config": {"data": str(root), "split": split, "songs": songs, "variants": list(variants),
                   "systems": list(systems), "device": device, "grid": grid, "labels": labels,
                   "intro_outro": intro_outro},
        "grid_inferred": {v: sum(1 for r in per_song if r["grid_source"].get(v) == "notes") for v in variants},
        "model": getattr(harmonizer, "source", None),
        "counts": {"songs": len(per_song), "skipped": len(skipped)},
        "end_to_end": {v: {s: _mean_rows(r) for s, r in by.items()} for v, by in rows.items()},
        "human": _mean_rows(human),
        "per_song": per_song,
        "skipped": skipped,
    }


def _progress(progress, total: int):
    """(a rich Progress to stop or None, a function to call once per song)."""
    if callable(progress):
        done = [0]

        def call():
            done[0] += 1
            progress(done[0], total)

        return None, call
    if not progress:
        return None, lambda: None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn("end-to-end"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   console=Console(stderr=True), transient=True)
    task = bar.add_task("songs", total=total)
    bar.start()
    return bar, lambda: bar.advance(task)


def print_end_to_end(report: dict) -> None:
    """The figures as a rich table: one row per variant and system."""
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=160)
    cfg = report["config"]
    console.print(f"end to end, split {cfg['split']} of {cfg['data']}: {report['counts']['songs']} songs "
                  f"({report['counts']['skipped']} skipped), model {report['model']}, --grid {cfg.get('grid', 'auto')}"
                  + (f", --intro-outro {cfg['intro_outro']}" if cfg.get("intro_outro") else ""), markup=False)
    inferred = report.get("grid_inferred") or {}
    if inferred:
        console.print("beats and bars inferred from the notes in " + ", ".join(f"{n} {v}" for v, n in inferred.items())
                      + " files", markup=False)
    cols = ("acc_root", "acc_majmin", "acc_class", "CHE", "CC", "CTnCTR", "PCS")
    against = {"cl": "POP909-CL's corrected chords"}.get(cfg.get("labels", "pop909"), "POP909's chords")
    table = Table(title=f"chords per annotated beat, from the melody-only file, against {against}")
    table.add_column("input")
    table.add_column("system")
    for c in cols:
        table.add_column(c, justify="right")
    for variant, by_system in report["end_to_end"].items():
        for system, row in by_system.items():
            table.add_row(variant, system, *(f"{row[c]:.3f}" for c in cols))
    if report.get("human"):
        table.add_row("annotated", "human (POP909)", *(f"{report['human'][c]:.3f}" for c in cols))
    console.print(table)
