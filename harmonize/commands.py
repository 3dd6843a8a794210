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


def check_output(out: Path, force: bool, inputs: tuple[Path, ...] = ()) -> None:
    """Refuse to write over the input, or over an existing file without --force; the folder must exist."""
    out = Path(out)
    for src in inputs:
        if src.exists() and out.exists() and out.resolve() == src.resolve():
            raise StripeError("refusing to overwrite the input file", out)
    if out.exists() and out.is_dir():
        raise StripeError("output is a folder, not a file path", out)
    if out.exists() and not force:
        raise StripeError("output exists (use --force to overwrite)", out)
    if not out.parent.exists():
        raise StripeError("output folder does not exist", out.parent)


def candidate_paths(out: Path, n: int) -> list[Path]:
    if n <= 1:
        return [out]
    return [out.with_name(f"{out.stem}-{i + 1}{out.suffix}") for i in range(n)]


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
    quiet: bool = False,
) -> list[dict]:
    """Harmonize one file; returns one summary dict per written candidate."""
    from .midi import read_song, write_harmonized, write_musicxml

    if candidates < 1:
        raise StripeError("--candidates must be at least 1")
    if temperature < 0:
        raise StripeError("--temperature must be 0 or more")
    if density <= 0:
        raise StripeError("--density must be positive")
    outs = candidate_paths(output, candidates)
    for out in outs:
        check_output(out, force, (input_path,))
    xml_outs = candidate_paths(musicxml, candidates) if musicxml else []
    for out in xml_outs:
        check_output(out, force, (input_path,))
    if candidates > 1 and temperature == 0:
        temperature = 1.0  # several candidates only differ when chords are sampled

    song = read_song(input_path, melody_track=_track_arg(melody_track))
    from .pipeline import Harmonizer, HarmonizeOptions
    from .structure import parse_key

    user_key = parse_key(key) if key else None
    user_chords = None
    if chords_file is not None:
        from .chordfile import read_chord_file

        user_chords = read_chord_file(chords_file, song.grid)
    harmonizer = Harmonizer.load(model, device=device)
    summaries = []
    for i, out in enumerate(outs):
        opts = HarmonizeOptions(key=user_key, chords=user_chords, temperature=temperature, seed=seed + i,
                                density=density, accompaniment=not (chords_only or no_accompaniment))
        result = harmonizer(song, opts)
        write_harmonized(input_path, out, result.chords, song.grid,
                         None if chords_only else result.accompaniment, force=force)
        if xml_outs:
            write_musicxml(song, result.chords, xml_outs[i], force=force)
        summaries.append({
            "output": str(out),
            "key": result.key.name,
            "key_source": result.key_source,
            "chords": [c.chord.symbol for c in result.chords],
            "n_chords": len(result.chords),
            "n_accompaniment_notes": len(result.accompaniment or []),
            "model": harmonizer.source,
        })
    return summaries


def _track_arg(value: str | None):
    if value is None:
        return None
    return int(value) if value.isdigit() else value


def save_json(obj, path: Path | None) -> str:
    text = json.dumps(obj, indent=2, default=str)
    if path:
        tmp = Path(str(path) + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    return text
