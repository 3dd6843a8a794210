"""The ``stripe`` command line (Typer).

Nothing heavy is imported here at module level (no numpy, torch, pretty_midi, music21, matplotlib):
``stripe --help`` stays instant. Each command imports what it needs and delegates to a module.

Errors: a ``StripeError`` prints ``error: <path>: <message>`` on one line of stderr and exits 2;
Ctrl-C exits 130; anything else is a bug and prints one line (``STRIPE_DEBUG=1`` shows the traceback).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer
from typer.core import TyperGroup

from . import __version__
from .errors import StripeError


def _print_error(text: str) -> None:
    """One line on stderr, through rich when it is importable (it always is with typer)."""
    line = " ".join(text.split())  # never more than one line, whatever the message holds
    try:
        from rich.console import Console
        from rich.text import Text

        Console(stderr=True, soft_wrap=True, highlight=False).print(Text("error: ", style="bold red") + line)
    except ImportError:  # pragma: no cover
        print(f"error: {line}", file=sys.stderr)


def _debug() -> bool:
    return os.environ.get("STRIPE_DEBUG", "") not in ("", "0")


def _user_error(exc: BaseException) -> str:
    """``<file>: <reason>`` for an OSError, the message (at most ~200 characters) for a ValueError."""
    if isinstance(exc, OSError):
        where = exc.filename if exc.filename is not None else ""
        reason = exc.strerror or str(exc) or type(exc).__name__
        return f"{where}: {reason}" if where else reason
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:200] + "..."


class _StripeGroup(TyperGroup):
    """Turns StripeError, Ctrl-C and bugs into one line and an exit code, inside typer's own handling
    (so ``typer.testing.CliRunner`` sees exactly what a user sees)."""

    def invoke(self, ctx: typer.Context):
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.exceptions.TyperException):  # typer's own exits and usage errors
            raise
        except StripeError as exc:
            if _debug():
                raise
            _print_error(f"{exc.path}: {exc.message}" if exc.path else exc.message)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            _print_error("interrupted")
            ctx.exit(130)
        except (OSError, ValueError) as exc:  # from the user's files and values: one line, exit 2
            if _debug():
                raise
            _print_error(_user_error(exc))
            ctx.exit(2)
        except Exception as exc:
            if _debug():
                raise
            _print_error(f"internal error: {type(exc).__name__}: {exc} (rerun with STRIPE_DEBUG=1 for the traceback)")
            ctx.exit(1)


app = typer.Typer(
    cls=_StripeGroup,
    name="stripe",
    help="Harmonize MIDI melodies with structure-informed linear-attention transformers (RoPEPool).",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"stripe {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """stripe: melody in, chords and piano accompaniment out."""


# ------------------------------------------------------------------------------------------- commands


@app.command()
def harmonize(
    midi: list[Path] = typer.Argument(
        ..., help="The MIDI file with the melody; several files, or a folder, harmonize each into -o OUTDIR/."),
    output: Path = typer.Option(
        ..., "-o", "--output", help="Where to write the harmonized MIDI file (a folder for several inputs)."),
    model: str | None = typer.Option(
        None, "--model", help="Bundled model name, a local model folder, or a Hugging Face Hub repo id "
        "(user/name; the only case that uses the network). Default: the bundled model."),
    melody_track: str | None = typer.Option(
        None, "--melody-track", help="Melody track, by name or index (default: chosen automatically)."),
    key: str | None = typer.Option(None, "--key", help="The key, e.g. 'A minor', 'Am', 'Eb' (default: estimated)."),
    chords: Path | None = typer.Option(
        None, "--chords", help="Your own chords ('TIME CHORD' per line): only the accompaniment is generated."),
    temperature: float = typer.Option(
        0.0, "--temperature", min=0.0, help="0 picks the most likely chords; higher samples more adventurous ones."),
    harmonic_rhythm: str = typer.Option(
        "auto", "--harmonic-rhythm", help="Where chords may change: bar (at most one chord a bar), half (also "
        "mid-bar), beat (any beat); auto picks beat in four beats a bar, else half (in three: a chord a bar)."),
    intro_outro: str | None = typer.Option(
        None, "--intro-outro", help="Before the melody's first note and after its last: rest (no chords, no "
        "accompaniment), play (chords and accompaniment there too), or auto (rest, but 2+ empty bars before or "
        "after the melody are an intro or outro and play; the last chord rings to its bar's end). Default: the "
        "model's setting (bundled: auto)."),
    seed: int = typer.Option(0, "--seed", help="Random seed: the same seed gives the same file."),
    candidates: int = typer.Option(
        1, "--candidates", min=1, max=64, help="Write N alternatives (out-1.mid, out-2.mid, ...)."),
    density: float = typer.Option(
        1.0, "--density", min=0.05, max=20.0, help="Accompaniment density: 2 doubles the odds of a note, 0.5 halves them."),
    musicxml: Path | None = typer.Option(None, "--musicxml", help="Also write a lead sheet (melody + chord symbols)."),
    ignore_file_chords: bool = typer.Option(
        False, "--ignore-file-chords", help="Do not use a chord track found in the file: let the chord stage "
        "write the chords (by default a file's own chords are kept and only the accompaniment is generated)."),
    pickup: float | None = typer.Option(
        None, "--pickup", help="Beats of upbeat before the first bar line (0: none). Default: detected from the "
        "melody's accents against the meter."),
    chords_only: bool = typer.Option(False, "--chords-only", help="Only chords: skip the accompaniment stage."),
    no_accompaniment: bool = typer.Option(False, "--no-accompaniment", help="Same as --chords-only."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or auto."),
    threads: int = typer.Option(
        1, "--threads", min=0, help="CPU threads for the model (0: torch's default). One stays fast on a busy "
        "machine; 2 shortens the model's part on an idle one (a 200-bar song: about 0.4 s -> 0.25 s)."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing output files."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary instead of text."),
    grid: str = typer.Option(
        "auto", "--grid", help="auto: the file's own beat grid when its notes sit on it, else beats and bars "
        "inferred from the notes (the output then gets a tempo map that follows them); file; notes."),
) -> None:
    """Add chords and a piano accompaniment to a melody (the input's own tracks are kept untouched)."""
    options = dict(melody_track=melody_track, key=key, temperature=temperature, seed=seed, candidates=candidates,
                   density=density, force=force, chords_only=chords_only, no_accompaniment=no_accompaniment,
                   ignore_file_chords=ignore_file_chords, pickup=pickup, grid=grid, harmonic_rhythm=harmonic_rhythm,
                   intro_outro=intro_outro)
    from .batch import is_batch
    from .decode import check_harmonic_rhythm, check_intro_outro

    check_harmonic_rhythm(harmonic_rhythm)  # before any file of a batch is read: one error, not one per file
    check_intro_outro(intro_outro)
    failures: list[str] = []
    if is_batch(midi):
        from .batch import run_batch

        if chords is not None:
            raise StripeError("--chords belongs to one song: leave it out when harmonizing several files")
        summaries, failures = run_batch(midi, output, musicxml=musicxml, model=model, device=device,
                                        threads=threads, quiet=as_json, **options)
    else:
        from .commands import run_harmonize

        summaries = run_harmonize(midi[0], output, model=model, chords_file=chords, device=device,
                                  musicxml=musicxml, threads=threads, **options)
    if as_json:
        import json

        sys.stdout.write(json.dumps(summaries, indent=2) + "\n")
        if failures:
            raise typer.Exit(1)
        return
    from rich.console import Console

    console = Console(highlight=False, soft_wrap=True)  # one line per file, never wrapped
    for s in summaries:
        head = " ".join(s["chords"][:8]) + (" ..." if len(s["chords"]) > 8 else "")
        pickup = f", pickup of {s['pickup_beats']:g} beat(s) ({s['pickup_source']})" if s["pickup_beats"] else ""
        console.print(f"wrote {s['output']}: key {s['key']} ({s['key_source']}), {s['n_chords']} chords "
                      f"({head}) from {s['chord_source']}, {s['n_accompaniment_notes']} accompaniment notes{pickup}"
                      + (f"; beats inferred from the notes ({s['tempo_bpm']:g} bpm)" if s["grid"] == "notes" else ""),
                      markup=False)
        stages = s.get("stage_models") or {}
        if len(set(stages.values())) > 1:
            console.print("models: " + ", ".join(f"{k} from {v}" for k, v in stages.items()), markup=False)
        for note in s.get("notes", ()):
            console.print(f"note: {note}", markup=False)
    if failures:
        console.print(f"{len(failures)} of {len(failures) + len({s['input'] for s in summaries})} files failed "
                      "(listed above)", markup=False)
        raise typer.Exit(1)


@app.command()
def train(
    ctx: typer.Context,
    data: Path | None = typer.Option(
        None, "--data", help="A POP909-layout folder, or a folder of MIDI files with chords (see README: Train on "
        "your own music). Default: $STRIPE_POP909, ./pop909 or ../shared/pop909."),
    out: Path = typer.Option(Path("runs/model"), "--out", help="Run folder: checkpoints, log, final/ model and best/ (best validation)."),
    config: Path | None = typer.Option(None, "--config", help="A JSON or TOML file of TrainConfig fields (flags override it)."),
    stage: str = typer.Option("accompaniment", "--stage", help="chord, chord-beat (one token per beat, key-relative) or accompaniment."),
    pe: str = typer.Option("ropepool", "--pe", help="none, ape, rope_a, rope_b, rope_c, fstripe1, fstripe, ropepool."),
    context: str = typer.Option("bin", "--context", help="none, time, rep, key or bin."),
    inputs: str = typer.Option("melody,bridge", "--inputs", help="Comma-separated input blocks: melody, bridge, chroma, meter."),
    structure: Path | None = typer.Option(None, "--structure", help="Dai et al. folder: take chords from finalized_chord.txt."),
    cl: Path | None = typer.Option(None, "--cl", help="chord-beat: a POP909-CL folder; train on its corrected chords."),
    extra_data: Path | None = typer.Option(None, "--extra-data", help="chord-beat: a second folder (POP909 layout or "
                                           "MIDI files with chords) whose songs join the training and validation splits."),
    window_jitter: bool = typer.Option(False, "--window-jitter", help="chord-beat: cut the songs into windows at "
                                       "other bars every epoch (seeded)."),
    extra_repeat: int = typer.Option(1, "--extra-repeat", help="chord-beat: use each --extra-data training song this "
                                     "many times per epoch (a small style corpus next to a big one)."),
    aux_weight: float = typer.Option(0.5, "--aux-weight", help="chord-beat: weight of the piano bass/chroma heads."),
    local_kernel: int = typer.Option(1, "--local-kernel", help="Input convolution over this many neighbouring tokens "
                                     "(odd; needs --bidirectional; 1: a plain projection). --init may start from a 1."),
    beat_features: str = typer.Option("base", "--beat-features", help="chord-beat: the per-beat token's features: "
                                      "base, or line (adds the pitch classes on the beat and those reached or left by a leap)."),
    bar_silence: float = typer.Option(0.0, "--bar-silence", help="chord-beat: take the melody out of this share of "
                                      "the training bars (their chords stay the targets), as between a song's phrases."),
    keep_epochs: bool = typer.Option(False, "--keep-epochs", help="Also save each epoch's weights as "
                                     "OUT/epochs/NN/ (python -m benchmarks.pick_epoch scores them end to end)."),
    bridge_fill: bool = typer.Option(False, "--bridge-fill", help="chord-beat, POP909 layout: also train on a copy of "
                                     "each song whose melody's rests are filled with its BRIDGE track's notes."),
    block_kernel: int = typer.Option(1, "--block-kernel", help="A depthwise convolution over this many neighbouring "
                                     "tokens in every block, after its attention (odd; needs --bidirectional; 1: none)."),
    hop_bars: int = typer.Option(4, "--hop-bars", help="Bars between training windows."),
    d_ff: int = typer.Option(256, "--d-ff"),
    bars: int = typer.Option(16, "--bars", help="Training window length in bars."),
    d_model: int = typer.Option(128, "--d-model"),
    n_layers: int = typer.Option(2, "--layers"),
    n_heads: int = typer.Option(4, "--heads"),
    epochs: int = typer.Option(15, "--epochs"),
    dropout: float = typer.Option(0.1, "--dropout", help="Dropout rate (a fine-tune may raise it: --init allows it)."),
    batch_size: int = typer.Option(8, "--batch-size"),
    lr: float = typer.Option(5e-4, "--lr"),
    max_steps: int = typer.Option(0, "--max-steps", help="Stop after this many steps (0: no cap)."),
    max_songs: int = typer.Option(0, "--max-songs", help="Use only the first N training songs (0: all)."),
    max_minutes: float = typer.Option(0.0, "--max-minutes", help="Stop cleanly after this much wall time (0: no cap)."),
    bidirectional: bool = typer.Option(False, "--bidirectional", help="Non-causal attention (sensible for the chord stage)."),
    transpose: int = typer.Option(0, "--transpose", help="Random transposition augmentation, in ±semitones."),
    chroma_noise: float = typer.Option(0.0, "--chroma-noise", help="Chance to replace a context chord by a random one."),
    bridge_dropout: float = typer.Option(0.0, "--bridge-dropout", help="Chance to blank the bridge input of a window."),
    curriculum_steps: int = typer.Option(
        0, "--curriculum-steps", help="Length curriculum: grow windows from --curriculum-min steps over this many steps (0: off)."),
    curriculum_min: int = typer.Option(64, "--curriculum-min", help="Shortest window of the curriculum, in 16th steps."),
    warmup_steps: int = typer.Option(200, "--warmup-steps", help="Linear learning-rate warm-up."),
    lr_decay: float = typer.Option(0.85, "--lr-decay", help="Learning-rate factor per epoch after warm-up."),
    grad_clip: float = typer.Option(1.0, "--grad-clip", help="Gradient-norm clipping."),
    seed: int = typer.Option(0, "--seed"),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda (mixed precision on CUDA only)."),
    checkpoint_every: int = typer.Option(200, "--checkpoint-every", help="Steps between checkpoints."),
    threads: int = typer.Option(0, "--threads", help="CPU threads (0: torch default)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its last checkpoint."),
    init: Path | None = typer.Option(None, "--init", help="Start from a trained model's weights (fine-tune), e.g. "
                                     "models/pop909-beat; the architecture flags must match it."),
    precision: str = typer.Option("auto", "--precision", help="auto (bf16 autocast on CUDA, fp32 on CPU), bf16 or fp32."),
    compile_: bool = typer.Option(False, "--compile", help="torch.compile the model (CUDA only)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only show what the data loader reads (as `stripe data check`); "
                                 "write nothing."),
) -> None:
    """Train the chord or the accompaniment stage on POP909 or your own MIDI files (train split;
    validation on val). Under torchrun, trains with DDP: --batch-size is the global batch."""
    from .commands import build_train_config, run_train

    cli_values = dict(
        data=data, out=out, stage=stage, pe=pe, context=context, inputs=inputs, structure=structure, cl=cl,
        aux_weight=aux_weight, extra_data=extra_data, extra_repeat=extra_repeat, window_jitter=window_jitter, hop_bars=hop_bars, d_ff=d_ff,
        bars=bars, d_model=d_model, n_layers=n_layers, n_heads=n_heads, epochs=epochs, dropout=dropout,
        batch_size=batch_size, lr=lr, max_steps=max_steps, max_songs=max_songs, max_minutes=max_minutes,
        causal=not bidirectional, transpose=transpose, chroma_noise=chroma_noise,
        bridge_dropout=bridge_dropout, curriculum_steps=curriculum_steps, curriculum_min=curriculum_min,
        warmup_steps=warmup_steps, lr_decay=lr_decay, grad_clip=grad_clip, seed=seed,
        device=device, checkpoint_every=checkpoint_every, threads=threads, precision=precision,
        compile=compile_, init=init, local_kernel=local_kernel, block_kernel=block_kernel,
        beat_features=beat_features, bar_silence=bar_silence, bridge_fill=bridge_fill,
        keep_epochs=keep_epochs,
    )
    explicit = {k for k in cli_values
                if getattr(ctx.get_parameter_source(_param_name(k)), "name", "") == "COMMANDLINE"}
    cfg = build_train_config(cli_values, config, explicit, resume=resume)
    if dry_run:
        from .data.datacheck import run_data_check

        run_data_check(Path(cfg.data), seed=cfg.seed, max_songs=cfg.max_songs, val_max_songs=cfg.val_max_songs)
        return
    run_train(cfg, resume=resume, explicit=explicit)


def _param_name(field: str) -> str:
    return {"causal": "bidirectional", "compile": "compile_"}.get(field, field)


data_app = typer.Typer(cls=_StripeGroup, help="Inspect training data.", no_args_is_help=True,
                       rich_markup_mode=None)
app.add_typer(data_app, name="data")


@data_app.command(name="check")
def data_check(
    folder: Path = typer.Argument(..., help="A folder of MIDI files with chords, or a POP909-layout folder."),
    seed: int = typer.Option(0, "--seed", help="Seed of the 90/10 split (when the folder has no split.json)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON to stdout instead of a table."),
) -> None:
    """How many songs, bars and chords training would read, per split, and which files are skipped and why."""
    from .data.datacheck import run_data_check

    run_data_check(folder, seed=seed, as_json=as_json)


@app.command(name="eval")
def eval_(
    length: int = typer.Option(16, "--length", help="Accompaniment window length in bars (16, 32, 64, ...)."),
    data: Path | None = typer.Option(None, "--data", help="A POP909-layout folder (default: $STRIPE_POP909, ./pop909 or ../shared/pop909)."),
    split: str = typer.Option("val", "--split", help="Which split to score (the test songs are withheld)."),
    model: str | None = typer.Option(None, "--model", help="Bundled name, model folder or Hub id (default: bundled)."),
    max_songs: int = typer.Option(0, "--max-songs", help="Score only the first N songs (0: all)."),
    no_chords: bool = typer.Option(False, "--no-chords", help="Skip the chord metrics."),
    no_accompaniment: bool = typer.Option(False, "--no-accompaniment", help="Skip the accompaniment metrics."),
    tune: bool = typer.Option(False, "--tune", help="Tune the binarization threshold and gap on this split first."),
    device: str = typer.Option("cpu", "--device"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON to stdout."),
    json_out: Path | None = typer.Option(None, "--json-out", help="Also save the JSON report to this file."),
    plot: Path | None = typer.Option(None, "--plot", help="Save a bar chart of the metrics as PNG."),
    end_to_end: bool = typer.Option(
        False, "--end-to-end", help="Score what `stripe harmonize` gives from each song's melody alone, in a "
        "file with the song's own timing (raw) and re-timed onto a clean beat grid (grid), model and HMM "
        "baseline, per annotated beat."),
    songs: int = typer.Option(0, "--songs", help="With --end-to-end: only the first N songs (0: all; "
                              "--max-songs works too)."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing --json-out / --plot files."),
    grid: str = typer.Option("auto", "--grid", help="With --end-to-end: read the files as `stripe harmonize "
                             "--grid` does (auto, file or notes)."),
    labels: str = typer.Option("pop909", "--labels", help="With --end-to-end: score against POP909's chords "
                               "(pop909) or POP909-CL's corrected chords (cl)."),
    cl_data: Path | None = typer.Option(None, "--cl-data", help="With --labels cl: the POP909-CL folder "
                                        "(default: pop909-cl beside --data)."),
    intro_outro: str | None = typer.Option(None, "--intro-outro", help="With --end-to-end: as `stripe harmonize "
                                           "--intro-outro` (rest, play or auto; default: the model's setting)."),
) -> None:
    """Score chords (accuracy, CHE, CC, CTD, CTnCTR, PCS, MCTD; model vs HMM baseline vs human) and the
    accompaniment (CS, SSMD, GS, NDD with oracle vs predicted chords) on a POP909 split."""
    if end_to_end:
        from .commands import run_end_to_end

        run_end_to_end(data=data, split=split, model=model, songs=songs or max_songs, device=device,
                       as_json=as_json, json_out=json_out, force=force, grid=grid, labels=labels,
                       cl_data=cl_data, intro_outro=intro_outro)
        return
    from .commands import run_eval

    run_eval(length=length, data=data, split=split, model=model, max_songs=max_songs,
             chords=not no_chords, accompaniment=not no_accompaniment, tune=tune, device=device,
             as_json=as_json, json_out=json_out, plot=plot, force=force)


@app.command()
def labels(
    midi: Path = typer.Argument(..., help="The MIDI file to inspect."),
    melody_track: str | None = typer.Option(
        None, "--melody-track", help="Melody track, by name or index (default: chosen automatically)."
    ),
    key: str | None = typer.Option(
        None, "--key", help="The key, e.g. 'A minor', 'Am', 'A:min', 'F# major' (default: estimated)."
    ),
    chords: Path | None = typer.Option(
        None, "--chords", help="A chord file (one 'TIME CHORD' per line) instead of chords in the MIDI "
        "(default: SONG.chords.txt beside SONG.mid when there is one, as training reads it)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON to stdout instead of a table."),
    plot: Path | None = typer.Option(
        None, "--plot", help="Draw the melody and its labels to this PNG (needs matplotlib)."
    ),
    grid: str = typer.Option("auto", "--grid", help="auto (the file's grid if its notes sit on it, else "
                             "inferred from the notes), file or notes."),
    pickup: float | None = typer.Option(
        None, "--pickup", help="Beats of upbeat before the first bar line (0: none; default: detected, as "
        "harmonize does)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing --plot file."),
) -> None:
    """Show what stripe understood of a MIDI file, bar by bar: melody track, meter, tempo, key,
    repetition and chords."""
    from .io.outputs import Outputs
    from .structure import label_song, parse_key

    guard = Outputs([plot], inputs=[midi, chords], force=force)  # checked before any work
    given_key = None
    if key is not None:
        try:
            given_key = parse_key(key)
        except StripeError as exc:
            raise StripeError(exc.message, "--key") from None
    if chords is None:  # what ``stripe train --data FOLDER`` reads: the song.chords.txt beside song.mid
        from .data.folder_data import chord_file_for

        chords = chord_file_for(midi) if chord_file_for(midi).is_file() else None
    song = _read_song(midi, melody_track, grid)
    from .pickup import apply_pickup

    song = apply_pickup(song, pickup)[0]  # the same bar lines as stripe harmonize uses
    given_chords = None
    if chords is not None:
        from .io.chordfile import read_chord_file

        given_chords = read_chord_file(chords, song.grid)
    structure = label_song(song, key=given_key, chords=given_chords)
    report = labels_report(midi, song, structure, chord_file=chords)
    if plot is not None:
        with guard:
            plot_labels(song, structure, report, plot, guard)
    if as_json:
        import json

        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        _print_labels(report)


# ----------------------------------------------------------------------------------- labels helpers


def _read_song(midi: Path, melody_track: str | None, grid: str = "auto"):
    from .commands import read_input_song

    return read_input_song(midi, melody_track, grid)


def rep_letter(i: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA, ..."""
    text = ""
    i += 1
    while i > 0:
        i, r = divmod(i - 1, 26)
        text = chr(65 + r) + text
    return text


def labels_report(midi: Path, song, structure, chord_file: Path | None = None) -> dict:
    """Song-level facts and one entry per bar, as plain JSON-able data (what ``stripe labels`` shows)."""
    from .io.midi import chord_symbol

    grid = song.grid
    times = grid.step_times
    n_bars = len(grid.bar_starts)
    bounds = list(grid.bar_starts) + [grid.n_steps]

    def meter_at(step: int) -> str:
        current = "4/4"
        for s, num, den in grid.time_signatures:
            if s <= step:
                current = f"{num}/{den}"
        return current

    def key_at(bar: int):
        current = structure.local_keys[0][1]
        for b, k in structure.local_keys:
            if b <= bar:
                current = k
        return current

    spans = sorted(structure.chords or [], key=lambda c: c.start)
    bars = []
    for b in range(n_bars):
        lo, hi = bounds[b], bounds[b + 1]
        beats = [x for x in grid.beat_starts if lo <= x < hi] or [lo]
        bar_chords = []
        for span in spans:
            if span.end <= lo or span.start >= hi:
                continue
            at = max(span.start, lo)
            beat = sum(1 for x in beats if x <= at)
            if bar_chords and bar_chords[-1]["chord"] == chord_symbol(span.chord, structure.key):
                continue
            bar_chords.append({"beat": beat, "chord": chord_symbol(span.chord, structure.key)})
        step_len = times[lo + 1] - times[lo] if lo + 1 < len(times) else times[-1] - times[-2]
        bars.append({
            "bar": b + (0 if grid.pickup else 1),  # a pickup is bar 0
            "start_step": int(lo),
            "start_s": round(float(times[lo]), 3),
            "meter": meter_at(lo),
            "steps": int(hi - lo),
            "tempo_bpm": round(60.0 / (4 * float(step_len)), 2),
            "key": key_at(b).name,
            "rep": rep_letter(int(structure.bar_rep[b])),
            "melody_notes": sum(1 for n in song.melody if lo <= n.start < hi),
            "chords": bar_chords,
        })
    chord_source = structure.chord_source
    if chord_file is not None:
        chord_source = f"file:{chord_file}"
    return {
        "file": str(midi),
        "melody_track": song.melody_track,
        "bridge_track": bool(song.bridge),
        "other_tracks": list(song.others),
        "n_bars": n_bars,
        "n_steps": int(grid.n_steps),
        "duration_s": round(float(times[-1]), 3),
        "tempo_bpm": round(float(song.tempo_bpm), 2),
        "grid": song.grid_source,
        "key": structure.key.name,
        "key_source": structure.key_source,
        "local_keys": [{"bar": b + (0 if grid.pickup else 1), "key": k.name} for b, k in structure.local_keys],
        "chord_source": chord_source,
        "bars": bars,
    }


def _print_labels(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    console.print(f"[bold]{report['file']}[/bold]", markup=True)
    console.print(
        f"melody track: {report['melody_track']}   bars: {report['n_bars']}   "
        f"length: {report['duration_s']:.1f} s   tempo: {report['tempo_bpm']:g} bpm   grid: "
        + ("inferred from the notes" if report.get("grid") == "notes" else "the file's"),
        markup=False,
    )
    local = ", ".join(f"bar {x['bar']}: {x['key']}" for x in report["local_keys"])
    console.print(f"key: {report['key']} ({report['key_source']})   local keys: {local}", markup=False)
    console.print(f"chords: {report['chord_source']}", markup=False)
    table = Table(show_edge=False, pad_edge=False)
    for col in ("bar", "time", "meter", "tempo", "key", "rep", "notes", "chords"):
        table.add_column(col, justify="right" if col in ("bar", "time", "tempo", "notes") else "left")
    for bar in report["bars"]:
        chords = " ".join(f"{c['beat']}:{c['chord']}" for c in bar["chords"]) or "-"
        table.add_row(
            str(bar["bar"]), f"{bar['start_s']:.2f}", bar["meter"], f"{bar['tempo_bpm']:g}", bar["key"],
            bar["rep"], str(bar["melody_notes"]), chords,
        )
    console.print(table)


def plot_labels(song, structure, report: dict, out: Path, guard=None) -> None:
    """Melody pianoroll in rows of bars with repetition letters and chord symbols: ``labelplot``; written
    through ``guard`` (``outputs.Outputs``) when given."""
    from .labelplot import plot_labels as draw

    draw(song, structure, report, out, guard=guard)


def main() -> None:
    """Entry point of the ``stripe`` script."""
    try:
        app(prog_name="stripe")
    except KeyboardInterrupt:  # outside a command (while parsing arguments)
        _print_error("interrupted")
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
