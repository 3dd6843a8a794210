"""Where weights come from: the bundled model, a local folder, or a Hugging Face Hub repo id.

A *harmonizer folder* holds ``chord/`` and ``accompaniment/`` model folders (each ``config.json`` +
``model.safetensors``, see ``model/checkpoint.py``) and ``harmonizer.json`` with decoding settings.
A single-stage folder (the ``final/`` of a ``stripe train`` run) is accepted too: it replaces that
stage of the bundled harmonizer.

Nothing is downloaded unless the user names a Hub repo id, and that name cannot be a typo of a local
path: ``hf:user/name`` always means the Hub. A bare ``user/name`` still means the Hub (backward
compatibility) only when it cannot be a path: nothing exists there, it does not start with ``.``, ``/``
or ``~``, and no folder ``user`` exists. Anything else that does not exist is "no such model folder".
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from .errors import StripeError

BUNDLED = "pop909-beat"  # the per-beat chord stage; pop909-ropepool (per-step) stays available by name
HUB_PREFIX = "hf:"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}/[\w.-]{1,96}$")
STAGES = ("chord", "accompaniment")

DEFAULT_DECODING = {
    "threshold": 0.5, "gap": 1, "change_penalty": 2.0, "offbar_penalty": 1.0, "none_penalty": 3.0,
    "key_weight": 1.0, "prior_weight": 0.0, "chord_window_bars": 16,
    # before the melody's first note and after its last: play (chords and accompaniment), rest (neither), auto
    # (rest, but an intro or outro of 2+ bars plays; decode.chord_span). Older folders' "melody_span_nc": true
    # reads as rest, false as play
    "intro_outro": "play",
    # pull of repeated melody bars' chord emissions towards their mean (0 = off, 1 = identical)
    "rep_weight": 0.0,
    # bonus for the tonic chord under the melody's final note (half of it for V before)
    "cadence_weight": 0.0,
    # bonus for I under a phrase-closing tonic or mediant inside the song, V under a supertonic or leading tone
    "phrase_cadence_weight": 0.0,
    # weight of the melody's chord-tone fit (the HMM baseline's emission) added to the chord stage's output
    "melody_fit_weight": 0.0,
    # per-beat chord stages: the share of each window the next one overlaps (0: windows side by side, half
    # the model time of 0.5; an ensemble of two members without overlap costs what one member with it does)
    "beat_window_overlap": 0.5,
    # > 0: a melody shorter than this many bars gets the prior correction in proportion (a folk tune's few chords
    # are its style, not a bias of the model to correct)
    "prior_full_bars": 0,
    # power of the learnt transitions' chord frequencies the posteriors are divided by (prior_weight: the song's)
    "corpus_prior_weight": 0.0,
    # decode with the folder's transitions.json (learnt bigrams) when it has one
    "learnt_transitions": True,
}


def bundled_root() -> Path:
    """``models/`` beside the imported package in a checkout (an editable install of *another* checkout
    would otherwise pair this code with that one's models); else ``harmonize/pretrained`` in an install
    (pyproject maps ``models/`` there)."""
    source = Path(__file__).resolve().parents[1] / "models"
    if (source / BUNDLED / "harmonizer.json").exists():
        return source
    try:
        return Path(str(resources.files("harmonize.pretrained")))
    except ModuleNotFoundError:  # running from the source tree, e.g. pytest in the repo root
        return source


def bundled_names() -> list[str]:
    root = bundled_root()
    return sorted(p.name for p in root.iterdir() if (p / "harmonizer.json").exists()) if root.exists() else []


@dataclass
class StageSpec:
    folder: Path
    meta: dict = field(default_factory=dict)


MAX_CHORD_MEMBERS = 8  # chord/ and chord-2/ .. chord-8/


@dataclass
class HarmonizerSpec:
    """Folders of the two stages and the decoding settings, before any weights are loaded. ``chord_extra``:
    further per-beat chord stages (``chord-2/``, ``chord-3/``, ...) whose posteriors are averaged with
    ``chord``'s (an ensemble)."""

    chord: StageSpec | None
    accompaniment: StageSpec | None
    decoding: dict
    source: str
    chord_extra: list[StageSpec] = field(default_factory=list)


def resolve(model: str | None) -> HarmonizerSpec:
    """Turn ``--model`` (bundled name, local folder or Hub repo id) into stage folders."""
    if model is None or model in bundled_names() or model == BUNDLED:
        name = model or BUNDLED
        folder = bundled_root() / name
        if not (folder / "harmonizer.json").exists():
            raise StripeError("the bundled model is missing from this installation (reinstall stripe-harmonizer)",
                              folder)
        return _from_harmonizer_folder(folder, f"bundled:{name}")
    if model.startswith(HUB_PREFIX):
        repo_id = model[len(HUB_PREFIX):]
        if not _HUB_ID.match(repo_id):
            raise StripeError("not a Hugging Face Hub repo id (expected hf:user/name)", model)
        return _from_harmonizer_folder(download(repo_id), f"hub:{repo_id}")
    path = Path(model).expanduser()
    if path.exists():
        return _from_local_folder(path)
    if _is_bare_hub_id(model):
        return _from_harmonizer_folder(download(model), f"hub:{model}")
    raise StripeError(f"no such model folder (for a Hugging Face Hub repo write {HUB_PREFIX}user/name)", model)


def _is_bare_hub_id(model: str) -> bool:
    """``user/name`` that cannot be a local path (see the module docstring)."""
    return (bool(_HUB_ID.match(model)) and not model.startswith((".", "/", "~"))
            and not Path(model.split("/", 1)[0]).exists())


def _from_local_folder(path: Path) -> HarmonizerSpec:
    if not path.is_dir():
        raise StripeError("--model must be a folder (config.json + model.safetensors), not a file", path)
    if (path / "harmonizer.json").exists() or (path / "chord").is_dir():
        return _from_harmonizer_folder(path, str(path))
    if (path / "config.json").exists():
        meta = read_meta(path)
        stage = meta.get("stage")
        if stage not in STAGES:
            raise StripeError("config.json names no stage (chord or accompaniment)", path / "config.json")
        base = resolve(None)
        setattr(base, stage, StageSpec(path, meta))
        if stage == "chord":
            base.chord_extra = []  # your chord stage alone, not averaged with the bundled one's other members
        base.source = f"{path} ({stage}) + {base.source}"
        return base
    raise StripeError("not a model folder: no harmonizer.json, chord/ or config.json inside", path)


def download(repo_id: str) -> Path:
    """Fetch a Hub repo (or take it from the local Hugging Face cache when offline)."""
    try:
        from huggingface_hub import snapshot_download

        offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")
        return Path(snapshot_download(repo_id, local_files_only=offline,
                                      allow_patterns=["*.json", "*.safetensors", "*.md"]))
    except Exception as err:  # network, missing repo, not in cache: one line for the user
        raise StripeError(f"cannot get the model from the Hugging Face Hub ({err.__class__.__name__}: "
                          f"{str(err).splitlines()[0] if str(err) else ''})", repo_id) from None


def _read_json_object(path: Path, what: str) -> dict:
    try:
        raw = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise StripeError(f"unreadable {what} ({err.__class__.__name__})", path) from None
    if not isinstance(raw, dict):
        raise StripeError(f"{what} must be a JSON object, not {type(raw).__name__}", path)
    return raw


def read_meta(folder: Path) -> dict:
    """The ``meta`` object of ``folder/config.json``, its known fields type-checked."""
    from .beat_tokens import FEATURE_SETS

    path = Path(folder) / "config.json"
    meta = _read_json_object(path, "config.json").get("meta", {})
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        raise StripeError(f"config.json: meta must be a JSON object, not {type(meta).__name__}", path)
    checks = {
        "stage": lambda v: v in STAGES,
        "context": lambda v: isinstance(v, str),
        "inputs": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v) and len(v) > 0,
        "bars": lambda v: _is_int(v) and 1 <= v <= 4096,
        "kind": lambda v: v in ("step", "beat"),
        "feature_set": lambda v: v in FEATURE_SETS,
    }
    for name, ok in checks.items():
        if name in meta and not ok(meta[name]):
            raise StripeError(f"config.json: meta.{name} has an invalid value {_short(meta[name])}", path)
    if "context" in meta or "inputs" in meta:
        from .beat_tokens import BEAT_CONTEXTS
        from .data.dataset import CONTEXTS, INPUT_BLOCKS

        if meta.get("kind") == "beat" and meta.get("context") not in BEAT_CONTEXTS:
            raise StripeError(f"config.json: meta.context of a per-beat chord stage must be one of "
                              f"{', '.join(BEAT_CONTEXTS)}", path)
        if meta.get("context", "none") not in CONTEXTS:
            raise StripeError(f"config.json: meta.context must be one of {', '.join(CONTEXTS)}", path)
        if any(x not in INPUT_BLOCKS for x in meta.get("inputs", ())):
            raise StripeError(f"config.json: meta.inputs must be a subset of {', '.join(INPUT_BLOCKS)}", path)
    return meta


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _short(value, limit: int = 60) -> str:
    text = json.dumps(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# range of each decoding setting; its type is the type of its DEFAULT_DECODING value (an int also passes
# where a float is expected)
_DECODING_RANGES = {"threshold": (0.0, 1.0), "gap": (0, 10_000), "chord_window_bars": (1, 4096),
                    "rep_weight": (0.0, 1.0), "cadence_weight": (0.0, 100.0),
                    "melody_fit_weight": (0.0, 100.0), "phrase_cadence_weight": (0.0, 100.0),
                    "corpus_prior_weight": (0.0, 10.0), "beat_window_overlap": (0.0, 0.875),
                    "prior_full_bars": (0, 4096)}


def validate_decoding(decoding, path: Path) -> dict:
    """``harmonizer.json``'s ``decoding`` object, checked: known keys, numbers of the right type, in range, a
    setting of choices one of them (an older folder's ``melody_span_nc`` switch read as ``intro_outro``)."""
    if not isinstance(decoding, dict):
        raise StripeError(f"decoding must be a JSON object, not {type(decoding).__name__}", path)
    from .decode import INTRO_OUTRO

    choices = {"intro_outro": INTRO_OUTRO}  # settings that name one of a few choices
    if "melody_span_nc" in decoding:
        legacy = decoding["melody_span_nc"]
        if not isinstance(legacy, bool):
            raise StripeError(f"decoding.melody_span_nc must be a bool, not {_short(legacy)}", path)
        decoding = {"intro_outro": "rest" if legacy else "play",
                    **{k: v for k, v in decoding.items() if k != "melody_span_nc"}}
    for name, value in decoding.items():
        if name not in DEFAULT_DECODING:
            raise StripeError(f"unknown decoding setting {_short(name)}", path)
        if name in choices:
            if not isinstance(value, str) or value not in choices[name]:
                raise StripeError(f"decoding.{name} must be one of {', '.join(choices[name])}, not "
                                  f"{_short(value)}", path)
            continue
        default = DEFAULT_DECODING[name]
        if isinstance(default, bool) or not isinstance(default, int | float):
            ok = isinstance(value, type(default))
        elif isinstance(default, int):
            ok = _is_int(value)
        else:
            ok = isinstance(value, int | float) and not isinstance(value, bool) and value == value
        lo, hi = _DECODING_RANGES.get(name, (-1e6, 1e6))
        if not ok or isinstance(value, int | float) and not lo <= value <= hi:
            kind = "an integer" if _is_int(default) else f"a {type(default).__name__}"
            raise StripeError(f"decoding.{name} must be {kind} in {lo}..{hi}, not {_short(value)}", path)
    return decoding


def _from_harmonizer_folder(folder: Path, source: str) -> HarmonizerSpec:
    decoding = dict(DEFAULT_DECODING)
    settings = folder / "harmonizer.json"
    if settings.exists():
        decoding.update(validate_decoding(_read_json_object(settings, "harmonizer.json").get("decoding", {}),
                                          settings))
    stages = {}
    for stage in STAGES:
        sub = folder / stage
        stages[stage] = StageSpec(sub, read_meta(sub)) if (sub / "config.json").exists() else None
    if stages["chord"] is None:
        raise StripeError("the harmonizer has no chord/ model", folder)
    extra = []
    for n in range(2, MAX_CHORD_MEMBERS + 1):  # chord-2/, chord-3/, ... up to the first missing one
        sub = folder / f"chord-{n}"
        if not (sub / "config.json").exists():
            break
        meta = read_meta(sub)
        if meta.get("kind") != "beat" or stages["chord"].meta.get("kind") != "beat":
            raise StripeError("an ensemble of chord stages takes per-beat chord stages only (meta.kind beat)", sub)
        extra.append(StageSpec(sub, meta))
    if decoding["learnt_transitions"] and (folder / "transitions.json").exists():
        from .decode import load_transitions

        decoding["transitions"] = load_transitions(folder / "transitions.json")
    return HarmonizerSpec(stages["chord"], stages["accompaniment"], decoding, source, extra)


def assemble(chord: Path, accompaniment: Path | None, out: Path, decoding: dict | None = None,
             card: str | None = None) -> Path:
    """Build a harmonizer folder from two trained stage folders (``final/`` of ``stripe train`` runs)."""
    import shutil

    from .io.atomic import atomic_write, atomic_write_text

    out = Path(out)
    stages = [(stage, Path(src)) for stage, src in (("chord", chord), ("accompaniment", accompaniment)) if src]
    for stage, src in stages:  # both stages validate before anything is written
        meta = read_meta(src)
        if meta.get("stage") != stage:
            raise StripeError(f"expected a {stage} model, config.json says {meta.get('stage')!r}", src)
    out.mkdir(parents=True, exist_ok=True)
    for stage, src in stages:
        dest = out / stage
        dest.mkdir(exist_ok=True)
        for name in ("config.json", "model.safetensors"):
            atomic_write(dest / name, lambda tmp, f=src / name: shutil.copyfile(f, tmp))
    atomic_write_text(out / "harmonizer.json",
                      json.dumps({"decoding": {**DEFAULT_DECODING, **(decoding or {})}}, indent=2) + "\n")
    if card is not None:
        atomic_write_text(out / "README.md", card)
    return out
