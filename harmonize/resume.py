"""``stripe train --out RUN --resume``: the saved run knows its data and settings.

``--data`` may be left out (the run's own is used). A new ``--max-steps``, ``--max-minutes`` or ``--epochs``
is honoured (written into the run's ``train_config.json`` before training resumes); any other flag that
differs from the run's is refused in one line, since the checkpoint was trained with the run's settings.
"""

from __future__ import annotations

import json
from pathlib import Path

from .errors import StripeError

ADJUSTABLE = ("max_steps", "max_minutes", "epochs")
PER_INVOCATION = ("out", "device", "threads", "data")  # train() takes these from the command line


def saved_config(run: Path) -> dict | None:
    path = Path(run) / "train_config.json"
    if not path.is_file():
        return None
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise StripeError(f"unreadable run config ({err.__class__.__name__})", path) from None
    if not isinstance(saved, dict):
        raise StripeError(f"must hold a JSON object, not {type(saved).__name__}", path)
    import dataclasses

    from .train import TrainConfig

    unknown = sorted(set(saved) - {f.name for f in dataclasses.fields(TrainConfig)})
    if unknown:
        raise StripeError(f"not a stripe run config (unknown keys: {', '.join(str(k)[:30] for k in unknown[:5])})",
                          path)
    try:
        TrainConfig(**saved)  # every field checked before anything is compared or written back
    except StripeError as err:
        raise StripeError(err.message, path) from None
    return saved


def saved_data(run: Path) -> str | None:
    saved = saved_config(run)
    return saved.get("data") if saved else None


def apply_overrides(cfg, explicit: set[str]) -> list[str]:
    """Check the flags given with ``--resume`` against the run; write the adjustable ones into the run's
    config. Returns lines describing what changed (for the user)."""
    from .io.atomic import atomic_write_text

    run = Path(cfg.out)
    saved = saved_config(run)
    if saved is None:
        raise StripeError("nothing to resume: no train_config.json", run)
    values = {k: getattr(cfg, k) for k in explicit if hasattr(cfg, k)}
    for key, value in sorted(values.items()):
        if key in ADJUSTABLE or key in PER_INVOCATION:
            continue
        old = saved.get(key)
        if isinstance(old, list):
            old = tuple(old)
        if old != value:
            flag = "--" + {"causal": "bidirectional", "n_layers": "layers", "n_heads": "heads"}.get(key, key).replace("_", "-")
            raise StripeError(f"{flag} cannot change when resuming: the run was trained with {key}={old!r} "
                              "(start a new run with another --out)", run)
    changes = []
    for key in ADJUSTABLE:
        if key in values and saved.get(key) != values[key]:
            changes.append(f"{key} {saved.get(key)!r} -> {values[key]!r}")
            saved[key] = values[key]
    if changes:
        atomic_write_text(run / "train_config.json", json.dumps(saved, indent=2))
    return changes
