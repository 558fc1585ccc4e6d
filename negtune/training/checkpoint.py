"""Training checkpoints: complete-or-absent directories that a resumed run continues exactly.

Layout of ``RUN_DIR/checkpoints/step-000123/``::

    trainer_state.json   negtune.training.state.TrainerState: step, epoch, kind ("full"|"adapter"), ...
    model/               save_pretrained output: full weights or the PEFT adapter (+ tokenizer)
    optimizer.pt         optimizer state dict
    scheduler.pt         LR scheduler state dict
    rng_state.json       [per process: python, numpy, torch RNG states] (JSON: nothing to unpickle)

Why this shape: ``trainer_state.json`` is what ``negtune eval`` reads, ``model/`` loads with
``from_pretrained`` (or as an adapter), and the rest is what an exact resume needs. The
directory is written under a temporary name and renamed (``negtune.io.atomic_dir``), so a
run killed mid-save leaves only a dot-prefixed temp directory that nothing trusts.
"""
from __future__ import annotations

import base64
import json
import random
import re
import shutil
from pathlib import Path
from typing import Any

from negtune.errors import UserError
from negtune.io import atomic_dir, write_json
from negtune.training.state import STATE_FILE, TrainerState

RNG_FILE = "rng_state.json"
_NAME = re.compile(r"^step-(\d+)$")


def checkpoint_name(step: int) -> str:
    return f"step-{step:06d}"


def is_checkpoint(path: str | Path) -> bool:
    p = Path(path)
    return p.is_dir() and (p / STATE_FILE).is_file() and (p / "model").is_dir()


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Complete checkpoints under ``run_dir/checkpoints``, oldest first."""
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := _NAME.match(p.name)) and is_checkpoint(p)]
    return [p for _, p in sorted(found)]


def resolve_resume(run_dir: str | Path, resume: str | None) -> Path | None:
    """``None`` (fresh), ``"auto"`` (newest complete checkpoint, or fresh if none) or a path."""
    if resume is None:
        return None
    if resume == "auto":
        found = list_checkpoints(run_dir)
        return found[-1] if found else None
    p = Path(resume)
    if not p.exists():
        raise UserError(f"train.resume: {resume}: no such directory")
    if not is_checkpoint(p):
        raise UserError(f"train.resume: {resume}: not a negtune checkpoint (no {STATE_FILE} and model/)")
    return p


def rng_state() -> dict[str, Any]:
    """This process's Python, NumPy and torch RNG states as plain JSON (no pickle on resume)."""
    import numpy as np
    import torch

    version, words, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {"python": [version, list(words), gauss],
            "numpy": [kind, [int(k) for k in keys], int(pos), int(has_gauss), float(cached)],
            "torch": base64.b64encode(torch.get_rng_state().numpy().tobytes()).decode("ascii")}


def set_rng_state(state: dict[str, Any]) -> None:
    import numpy as np
    import torch

    version, words, gauss = state["python"]
    random.setstate((version, tuple(words), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    raw = np.frombuffer(base64.b64decode(state["torch"]), dtype=np.uint8).copy()
    torch.set_rng_state(torch.from_numpy(raw))


def save_checkpoint(path: str | Path, *, model: Any, state_dict: dict[str, Any] | None, tokenizer: Any,
                    optimizer_state: dict[str, Any], scheduler_state: dict[str, Any],
                    rng_states: list[dict[str, Any]], trainer_state: TrainerState) -> Path:
    """Write one checkpoint atomically (call on the main process only).

    A failed write (disk full, read-only, permission) is one ``UserError``; the temporary
    directory is removed and the previous complete checkpoints stay as they were."""
    import torch

    try:
        with atomic_dir(path, "checkpoint") as tmp:
            model.save_pretrained(tmp / "model", state_dict=state_dict, safe_serialization=True)
            if trainer_state.kind == "full":
                drop_stale_quantization(tmp / "model")
            if tokenizer is not None:
                tokenizer.save_pretrained(tmp / "model")
            torch.save(optimizer_state, tmp / "optimizer.pt")
            torch.save(scheduler_state, tmp / "scheduler.pt")
            write_json(tmp / RNG_FILE, rng_states)
            trainer_state.write(tmp)  # last: marks the content complete
    except (OSError, RuntimeError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err).splitlines()[0][:160]
        raise UserError(f"{path}: could not write the checkpoint ({reason}); earlier checkpoints are kept") from None
    return Path(path)


def drop_stale_quantization(model_dir: str | Path) -> bool:
    """Remove ``quantization_config`` from a saved model's ``config.json`` when every saved
    tensor is floating point; return whether it did.

    Why: a full fine-tuning checkpoint holds the trained weights as plain tensors, so a
    quantization config inherited from the base model's config (e.g. a GGUF one) describes
    weights that are not there: ``from_pretrained`` would attach a quantizer, and tools that
    forward the config (lm-evaluation-harness) fail to load the checkpoint. Genuinely
    quantized weights are stored as integer tensors, and their config is kept.
    """
    import json

    from safetensors import safe_open

    from negtune.io import write_json

    config_path = Path(model_dir) / "config.json"
    config = json.loads(config_path.read_text())
    if "quantization_config" not in config:
        return False
    for f in sorted(Path(model_dir).glob("*.safetensors")):
        with safe_open(str(f), framework="pt") as fh:
            if not all(fh.get_slice(k).get_dtype().startswith(("F", "BF")) for k in fh.keys()):
                return False
    del config["quantization_config"]
    write_json(config_path, config)
    return True


def load_training_state(path: str | Path) -> dict[str, Any]:
    """Optimizer, scheduler and RNG states for an exact resume, loaded without unpickling code:
    ``torch.load(weights_only=True)`` accepts tensors and plain containers only, and the RNG
    states are JSON."""
    import torch

    p = Path(path)
    out: dict[str, Any] = {"trainer_state": TrainerState.read(p)}
    for key, name in (("optimizer", "optimizer.pt"), ("scheduler", "scheduler.pt")):
        try:
            out[key] = torch.load(p / name, map_location="cpu", weights_only=True)
        except Exception as err:  # noqa: BLE001 - any failure means: not a state negtune wrote
            first = (str(err).strip().splitlines() or [type(err).__name__])[0][:120]
            raise UserError(f"{p / name}: cannot be loaded for resume ({type(err).__name__}: {first})") from None
    try:
        out["rng"] = json.loads((p / RNG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise UserError(f"{p / RNG_FILE}: cannot be loaded for resume ({type(err).__name__})") from None
    return out


def load_model_weights(model: Any, path: str | Path, kind: str) -> None:
    """Load a checkpoint's weights into an already built (and, for adapters, wrapped) model."""
    from safetensors.torch import load_file

    model_dir = Path(path) / "model"

    def read(f: Path) -> dict[str, Any]:
        try:
            return load_file(str(f))
        except Exception as err:  # noqa: BLE001 - truncated or garbage file
            raise UserError(f"{f}: unreadable weights ({type(err).__name__}); the checkpoint is damaged") from None

    if kind == "adapter":
        from peft import set_peft_model_state_dict

        result = set_peft_model_state_dict(model, read(model_dir / "adapter_model.safetensors"))
        unexpected = getattr(result, "unexpected_keys", [])
        if unexpected:
            raise UserError(f"train.resume: {path}: adapter does not match the model ({unexpected[0]} ...)")
        return
    files = sorted(model_dir.glob("*.safetensors"))
    if not files:
        raise UserError(f"train.resume: {path}: model/ holds no safetensors weights")
    state: dict[str, Any] = {}
    for f in files:
        state.update(read(f))
    missing, unexpected = model.load_state_dict(state, strict=False)
    tied = set(getattr(model, "_tied_weights_keys", None) or [])
    missing = [k for k in missing if k not in tied and not k.endswith("lm_head.weight")]
    if missing or unexpected:
        raise UserError(f"train.resume: {path}: weights do not match the model "
                        f"(missing {missing[:2]}, unexpected {unexpected[:2]})")


def prune(run_dir: str | Path, keep_last: int) -> list[Path]:
    """Delete all but the newest ``keep_last`` complete checkpoints; return what was removed."""
    found = list_checkpoints(run_dir)
    removed = found[:-keep_last] if keep_last > 0 else []
    for p in removed:
        shutil.rmtree(p, ignore_errors=True)
    return removed
