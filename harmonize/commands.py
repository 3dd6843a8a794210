"""Bodies of ``stripe harmonize``, ``stripe train`` and ``stripe eval``; ``cli.py`` only parses flags.

Imported lazily by the CLI so that ``stripe --help`` never pays for torch.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .errors import StripeError


def default_data_dir() -> Path | None:
    """``$STRIPE_POP909``, else ``./pop909`` or ``../shared/pop909`` when they exist."""
    env = os.environ.get("STRIPE_POP909")
    if env:
        return Path(env)
    for candidate in (Path("pop909"), Path("../shared/pop909")):
        if (candidate / "split.json").exists() or candidate.is_dir():
            return candidate
    return None


def candidate_paths(out: Path, n: int) -> list[Path]:
    if n <= 1:
        return [out]
    return [out.with_name(f"{out.stem}-{i + 1}{out.suffix}") for i in range(n)]


def read_input_song(input_path: Path, melody_track: str | None = None, grid: str = "auto"):
    """The ``Song`` that ``stripe harmonize`` reads from a user's file (``stripe eval --end-to-end`` reads
    its melody-only files through this same function). ``grid``: auto, file or notes."""
    from .io.midi import melody_track_arg, read_song

    return read_song(input_path, melody_track=melody_track_arg(melody_track), grid=grid)


def run_harmonize(
    input_path: Path,
    output: Path,
    model: str | None = None,
    melody_track: str | None = None,
    key: str | None = None,
    chords_file: Path | None = None,
    temperature: float = 0.0,
    seed: int = 0,
    candidates: int = 1,
    density: float = 1.0,
    device: str = "cpu",
    force: bool = False,
    chords_only: bool = False,
    no_accompaniment: bool = False,
    musicxml: Path | None = None,
    threads: int = 1,
    grid: str = "auto",
    ignore_file_chords: bool = False,
    pickup: float | None = None,
    harmonic_rhythm: str = "auto",
    intro_outro: str | None = None,
    harmonizer=None,
) -> list[dict]:
    """Harmonize one file; returns one summary dict per written candidate. ``harmonizer``: an already
    loaded ``pipeline.Harmonizer`` (many files share one; ``model``, ``device``, ``threads`` are then unused)."""
    from .io.leadsheet import lead_sheet_writer
    from .io.midi import harmonized_writer
    from .io.outputs import Outputs

    if candidates < 1:
        raise StripeError("--candidates must be at least 1")
    from .decode import check_harmonic_rhythm, check_intro_outro

    check_harmonic_rhythm(harmonic_rhythm)
    check_intro_outro(intro_outro)
    if temperature < 0:
        raise StripeError("--temperature must be 0 or more")
    if density <= 0:
        raise StripeError("--density must be positive")
    outs = candidate_paths(output, candidates)
    xml_outs = candidate_paths(musicxml, candidates) if musicxml else []
    # every output checked (exists, input, clash, writable folder) before any work; written all or none
    guard = Outputs([*outs, *xml_outs], inputs=[input_path, chords_file], force=force)
    notes = []
    if candidates > 1 and temperature == 0:
        temperature = 0.5  # several candidates only differ when chords are sampled; 0.5 stays musical
    elif seed != 0 and temperature == 0:
        notes.append("--seed has no effect without sampling (--temperature > 0 or --candidates > 1)")

    song = read_input_song(input_path, melody_track, grid)
    tempo_map = None
    if song.grid_source == "notes":  # the output's tempo map follows the inferred beats and bars
        from .io.tempo_map import TempoMap

        tempo_map = TempoMap.from_grid(song.grid)
    from .pickup import apply_pickup, beat_steps

    beat_len = beat_steps(song.grid)  # of the file's meter: a part-beat pickup moves the grid's first beat
    song, n_pickup, pickup_how = apply_pickup(song, pickup)
    from .pipeline import HarmonizeOptions, Harmonizer
    from .spelling import harte_symbol, key_name
    from .structure import parse_key

    try:
        user_key = parse_key(key) if key is not None else None  # --key '' is an error, not "estimate"
    except StripeError as exc:
        raise StripeError(exc.message, "--key") from None
    user_chords = None
    if chords_file is not None:
        from .io.chordfile import read_chord_file

        user_chords = read_chord_file(chords_file, song.grid)
        chord_source = f"your chord file {Path(chords_file).name}"
    elif not ignore_file_chords:  # the file's own chord track, used as --chords is
        from .filechords import file_chords

        user_chords, track = file_chords(song)
        chord_source = f"the file's chord track {track!r}" if track else "chord stage"
    else:
        chord_source = "chord stage"
    if harmonizer is None:
        if threads:
            import torch

            torch.set_num_threads(threads)
        harmonizer = Harmonizer.load(model, device=device)
    summaries = []
    with guard:
        for i, out in enumerate(outs):
            opts = HarmonizeOptions(key=user_key, chords=user_chords, temperature=temperature, seed=seed + i,
                                    density=density, accompaniment=not (chords_only or no_accompaniment),
                                    harmonic_rhythm=harmonic_rhythm, intro_outro=intro_outro)
            result = harmonizer(song, opts)
            guard.stage(out, harmonized_writer(Path(input_path), result.chords, song.grid,
                                               None if chords_only else result.accompaniment, melody=song.melody,
                                               key=result.key, tempo_map=tempo_map))
            if xml_outs:
                from .io.leadsheet import title_of

                guard.stage(xml_outs[i], lead_sheet_writer(song, result.chords, key=result.key,
                                                           title=title_of(input_path, song)))
            summaries.append({
                "input": str(input_path),
                "output": str(out),
                "key": key_name(result.key),
                "key_source": result.key_source,
                "chord_source": chord_source,
                "pickup_beats": n_pickup / beat_len,
                "pickup_source": pickup_how,
                "chords": [harte_symbol(c.chord, result.key) for c in result.chords],  # spelled for the key
                "n_chords": len(result.chords),
                "n_accompaniment_notes": len(result.accompaniment or []),
                "model": harmonizer.source,
                "stage_models": getattr(harmonizer, "stage_sources", {}),
                "chord_times": chord_times(result.chords, song.grid, result.key),
                "notes": notes,
                "grid": song.grid_source,
                "tempo_bpm": round(float(song.tempo_bpm), 2),
            })
    return summaries


def chord_times(chords, grid, key) -> list[dict]:
    """Chords for ``--json``: symbol (spelled for the key), start/end in seconds and as BAR:BEAT (as chord
    files write them: 1-based, a pickup bar is bar 0)."""
    from .spelling import harte_symbol

    def bar_beat(step: int) -> str:
        import bisect

        b = max(0, bisect.bisect_right(grid.bar_starts, step) - 1)
        lo = grid.bar_starts[b]
        beats = [x for x in grid.beat_starts if lo <= x <= step]
        text = f"{b + (0 if grid.pickup else 1)}:{max(1, len(beats))}"
        off = step - (beats[-1] if beats else lo)
        return text + (f"+{off}/16" if off else "")

    times = grid.step_to_time([x for c in chords for x in (c.start, c.end)])
    return [{"chord": harte_symbol(c.chord, key), "start": round(float(times[2 * i]), 4),
             "end": round(float(times[2 * i + 1]), 4), "start_bar_beat": bar_beat(c.start),
             "end_bar_beat": bar_beat(c.end) if c.end < grid.n_steps else "end"}
            for i, c in enumerate(chords)]


def save_json(obj, path: Path | None, guard=None) -> str:
    """The JSON text of ``obj``; written to ``path`` through ``guard`` (an ``outputs.Outputs`` that
    checked it) when given, else through a fresh guard that refuses to overwrite."""
    text = json.dumps(obj, indent=2, default=str)
    if path:
        from .io.outputs import write_outputs

        if guard is not None:
            guard.stage(path, lambda tmp: Path(tmp).write_text(text))
        else:
            write_outputs({Path(path): lambda tmp: Path(tmp).write_text(text)})
    return text


def _read_config_file(path: Path) -> dict:
    if not path.is_file():
        raise StripeError("no such config file", path)
    try:
        if path.suffix == ".toml":
            import tomllib

            return tomllib.loads(path.read_text())
        return json.loads(path.read_text())
    except (ValueError, OSError) as err:
        raise StripeError(f"unreadable config ({err.__class__.__name__}: {err})", path) from None


def build_train_config(cli_values: dict, config_file: Path | None, explicit: set[str], resume: bool = False):
    """Defaults < config file < flags given on the command line (with ``resume``, the run's own data)."""
    import dataclasses

    from .train import TrainConfig

    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    values = {k: v for k, v in cli_values.items()}
    from_file: dict = {}
    if config_file is not None:
        from_file = _read_config_file(config_file)
        if not isinstance(from_file, dict):
            raise StripeError(f"a config file holds an object of TrainConfig fields, not {type(from_file).__name__}",
                              config_file)
        unknown = sorted(set(from_file) - fields)
        if unknown:
            raise StripeError(f"unknown config keys: {', '.join(unknown)}", config_file)
        for k, v in from_file.items():
            if k not in explicit:
                values[k] = v
    if values.get("data") is None and resume and values.get("out") is not None:
        from .resume import saved_data

        values["data"] = saved_data(Path(values["out"]))  # the run knows its data: --data may be left out
    if values.get("data") is None:
        found = default_data_dir()
        if found is None:
            raise StripeError("no data folder: pass --data pop909/ (a POP909-layout folder)")
        values["data"] = found
    if isinstance(values.get("inputs"), str):
        values["inputs"] = tuple(x.strip() for x in values["inputs"].split(",") if x.strip())
    for k in ("data", "out", "structure", "cl", "init", "extra_data"):
        if values.get(k) is not None:
            values[k] = str(values[k])
    _validate_choices(values)
    try:
        return TrainConfig(**values)
    except StripeError as err:  # a bad value from the config file: name the file
        field = getattr(err, "field", None)
        if config_file is not None and field in from_file and field not in explicit:
            raise StripeError(err.message, config_file) from None
        if field in explicit:  # name the flag the user typed
            flag = {"n_layers": "layers", "n_heads": "heads", "causal": "bidirectional"}.get(field, field)
            raise StripeError(err.message, "--" + flag.replace("_", "-")) from None
        raise


def _validate_choices(values: dict) -> None:
    from .data.dataset import CONTEXTS, INPUT_BLOCKS

    pes = ("none", "ape", "rope_a", "rope_b", "rope_c", "fstripe1", "fstripe", "ropepool")
    if values.get("pe") not in pes:
        raise StripeError(f"--pe must be one of {', '.join(pes)}, not {values.get('pe')!r}")
    if values.get("context") not in CONTEXTS:
        raise StripeError(f"--context must be one of {', '.join(CONTEXTS)}, not {values.get('context')!r}")
    bad = [b for b in values.get("inputs", ()) if b not in INPUT_BLOCKS]
    if bad or not values.get("inputs"):
        raise StripeError(f"--inputs must be a comma-separated subset of {', '.join(INPUT_BLOCKS)}")


def run_train(cfg, resume: bool = False, explicit: set[str] | None = None):
    from rich.console import Console

    from .train import train

    if not resume:  # CUDA-only options: refused before anything is printed or written
        from .distributed import maybe_compile, resolve_precision
        from .train import resolve_device

        device = resolve_device(cfg.device)
        resolve_precision(cfg.precision, device)
        maybe_compile(None, cfg.compile, device)
    # under torchrun only rank 0 speaks
    console = Console(stderr=True, highlight=False, quiet=os.environ.get("RANK", "0") not in ("0", ""))
    if resume and explicit is not None:
        from .resume import apply_overrides

        for change in apply_overrides(cfg, explicit):
            console.print(f"resuming with {change}", markup=False)
    shown, verb = cfg, "training"
    if resume:  # train() takes the run's saved config, not the flags: show that one
        verb = "resuming"
        try:
            from .train import TrainConfig

            shown = TrainConfig(**json.loads((Path(cfg.out) / "train_config.json").read_text()))
        except Exception:  # missing or unreadable: train() raises the proper error just below
            pass
    console.print(f"{verb} the {shown.stage} stage: pe={shown.pe} context={shown.context} "
                  f"d_model={shown.d_model} layers={shown.n_layers} -> {cfg.out}", markup=False)
    result = train(cfg, resume=resume)
    last = result.history[-1] if result.history else {}
    console.print(f"done: {result.steps} steps; final model in {Path(cfg.out) / 'final'}; "
                  + "  ".join(f"{k} {v:.4f}" for k, v in last.items() if isinstance(v, float)), markup=False)
    return result


def run_eval(length: int = 16, data: Path | None = None, split: str = "val", model: str | None = None,
             max_songs: int = 0, chords: bool = True, accompaniment: bool = True, tune: bool = False,
             device: str = "cpu", as_json: bool = False, json_out: Path | None = None,
             plot: Path | None = None, force: bool = False) -> dict:
    from .evaluate import EvalConfig, evaluate
    from .io.outputs import Outputs

    root = data or default_data_dir()
    if root is None:
        raise StripeError("no data folder: pass --data pop909/ (a POP909-layout folder)")
    if length < 1:
        raise StripeError("--length must be at least 1 bar")
    guard = Outputs([json_out, plot], force=force, input_dirs=[root])  # checked before the long work
    cfg = EvalConfig(data=str(root), split=split, model=model, length=length, max_songs=max_songs,
                     chords=chords, accompaniment=accompaniment, tune=tune, device=device)
    report = evaluate(cfg, progress=not as_json)
    with guard:
        text = save_json(report, json_out, guard)
        if plot is not None:
            plot_report(report, plot, guard)
    if as_json:
        import sys

        sys.stdout.write(text + "\n")
    else:
        print_report(report)
    return report


def run_end_to_end(data: Path | None = None, split: str = "val", model: str | None = None, songs: int = 0,
                   device: str = "cpu", as_json: bool = False, json_out: Path | None = None,
                   force: bool = False, grid: str = "auto", labels: str = "pop909",
                   cl_data: Path | None = None, intro_outro: str | None = None) -> dict:
    """``stripe eval --end-to-end``: see ``end_to_end.py``."""
    from .end_to_end import evaluate_end_to_end, print_end_to_end

    root = data or default_data_dir()
    if root is None:
        raise StripeError("no data folder: pass --data pop909/ (a POP909-layout folder)")
    if songs < 0:
        raise StripeError("--songs must be 0 (all) or more")
    from .io.outputs import Outputs

    guard = Outputs([json_out], force=force, input_dirs=[root, cl_data])
    from .io.midi import GRID_CHOICES

    if grid not in GRID_CHOICES:
        raise StripeError(f"--grid must be one of {', '.join(GRID_CHOICES)}, not {grid!r}")
    report = evaluate_end_to_end(root, split=split, model=model, songs=songs, device=device,
                                 progress=not as_json, grid=grid, labels=labels, cl_data=cl_data,
                                 intro_outro=intro_outro)
    with guard:
        text = save_json(report, json_out, guard)
    if as_json:
        import sys

        sys.stdout.write(text + "\n")
    else:
        print_end_to_end(report)
    return report


def print_report(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=160)  # a log file: no 80-column truncation
    cfg = report["config"]
    counts = report["counts"]
    console.print(f"split {cfg['split']} of {cfg['data']}: " + ", ".join(f"{v} {k}" for k, v in counts.items()),
                  markup=False)
    if report.get("chords"):
        table = Table(title="chords (one per beat)")
        cols = list(next(iter(report["chords"].values())).keys())
        table.add_column("system")
        for c in cols:
            table.add_column(c, justify="right")
        for system, row in report["chords"].items():
            table.add_row(system, *(f"{row[c]:.3f}" for c in cols))
        console.print(table)
    for title, rows in (("accompaniment", report.get("accompaniment")),):
        if rows:
            binar = report.get("binarization") or {}
            table = Table(title=f"{title}, {cfg['length']}-bar windows (binarization: "
                          + ", ".join(f"{k} {v:g}" for k, v in binar.items()) + ")")
            cols = list(next(iter(rows.values())).keys())
            table.add_column("condition")
            for c in cols:
                table.add_column(c, justify="right")
            for cond, row in rows.items():
                table.add_row(cond, *(f"{row[c]:.2f}" for c in cols))
            console.print(table)
    for cond, buckets in (report.get("buckets") or {}).items():
        table = Table(title=f"by position ({cond})")
        for c in ("bars", "CS", "SSMD", "GS", "NDD"):
            table.add_column(c, justify="right")
        for b in buckets:
            table.add_row(f"{b['start_bar']:.0f}-{b['end_bar']:.0f}", *(f"{b[c]:.2f}" for c in ("CS", "SSMD", "GS", "NDD")))
        console.print(table)


def plot_report(report: dict, out: Path, guard=None) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise StripeError("--plot needs matplotlib: pip install 'stripe-harmonizer[plot]'") from None
    rows = report.get("accompaniment") or {}
    fig, ax = plt.subplots(figsize=(7, 3.5))
    metrics = ("CS", "SSMD", "GS", "NDD")
    for i, (cond, row) in enumerate(rows.items()):
        ax.bar([j + 0.4 * i for j in range(4)], [row[m] for m in metrics], width=0.4, label=cond)
    ax.set_xticks([j + 0.2 for j in range(4)], metrics)
    ax.set_title(f"{report['config']['length']}-bar windows, split {report['config']['split']}")
    ax.legend()
    fig.tight_layout()
    from .io.outputs import save_figure

    save_figure(fig, out, guard)
