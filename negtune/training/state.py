"""``trainer_state.json``: what a checkpoint says about itself, as typed data.

Why one module: the trainer writes it at every save, and resume, ``negtune eval RUN_DIR``,
the epoch-end evaluation and the demo read it. Field names written as string literals in each
of them drift apart; here the file is one dataclass with one ``to_json`` and one
``from_json``, and a corrupt or foreign file is a one-line ``UserError`` naming it.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from negtune.errors import UserError

STATE_FILE = "trainer_state.json"
KINDS = ("full", "adapter")


@dataclass(frozen=True)
class DataPosition:
    """Where in the data the next step starts: epoch (0-based) and batch within it."""

    epoch: int
    step_in_epoch: int


@dataclass(frozen=True)
class TrainerState:
    step: int  # optimizer steps taken
    epoch: float  # fractional epochs completed (for logs and tables)
    kind: str  # "full": model/ holds all weights; "adapter": model/ holds a PEFT adapter
    base_model: str  # the resolved base model (a named offline source resolves to its cache dir)
    data_position: DataPosition
    total_steps: int
    steps_per_epoch: int
    global_batch: int
    processes: int
    recipe_sha256: str  # the whole resolved recipe
    recipe_sha256_train: str  # the settings a resumed run must share (see training.checks.train_hash)
    loss: str

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, d: Any, where: str) -> "TrainerState":
        if not isinstance(d, dict):
            raise UserError(f"{where}: expected a JSON object")
        try:
            pos = d["data_position"]
            state = cls(step=int(d["step"]), epoch=float(d["epoch"]), kind=str(d["kind"]),
                        base_model=str(d["base_model"]),
                        data_position=DataPosition(int(pos["epoch"]), int(pos["step_in_epoch"])),
                        total_steps=int(d["total_steps"]), steps_per_epoch=int(d["steps_per_epoch"]),
                        global_batch=int(d["global_batch"]), processes=int(d["processes"]),
                        recipe_sha256=str(d["recipe_sha256"]), recipe_sha256_train=str(d["recipe_sha256_train"]),
                        loss=str(d["loss"]))
        except KeyError as err:
            raise UserError(f"{where}: missing key {err.args[0]!r}") from None
        except (TypeError, ValueError) as err:
            raise UserError(f"{where}: malformed value ({err})") from None
        if state.kind not in KINDS:
            raise UserError(f"{where}: kind: expected 'full' or 'adapter', got {state.kind!r}")
        return state

    def write(self, checkpoint_dir: str | Path) -> None:
        from negtune.io import write_json

        write_json(Path(checkpoint_dir) / STATE_FILE, self.to_json())

    @classmethod
    def read(cls, checkpoint_dir: str | Path) -> "TrainerState":
        path = Path(checkpoint_dir) / STATE_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UserError(f"{path}: missing (not a complete checkpoint)") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise UserError(f"{path}: unreadable trainer state ({type(err).__name__})") from None
        return cls.from_json(data, str(path))

