"""A trial's checkpoint: everything needed to continue training mid-way, in one file.

``state.pt`` holds the model, optimizer, schedule and gradient-scaler states, the number of
finished epochs, the metrics reported after that epoch, and the random states (torch's and the
batch-order generator's), so a resumed trial continues exactly where it stopped.
"""
from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

STATE_FILE = "state.pt"


@dataclass
class TrainingState:
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    generator: torch.Generator
    extras: Any = None  # a nas.train.regularizers.Extras, or None

    def save(self, directory: str | Path, epoch: int, metrics: dict[str, Any]) -> Path:
        """Write the whole training state as state.pt (`write_state`)."""
        return write_state(directory, {
            "epoch": epoch,
            "metrics": metrics,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "batch_rng": self.generator.get_state(),
            **self._extras_state(),
        })

    def _extras_state(self) -> dict[str, Any]:
        if self.extras is None:
            return {}
        state = {"extras": self.extras.state_dict()}
        if self.extras.ema is not None:
            state["evaluated"] = self.extras.evaluated().state_dict()
        return state

    def load(self, directory: str | Path) -> tuple[int, dict[str, Any]]:
        """Restore the states saved in `directory`; returns (finished epochs, metrics of the last one)."""
        return self.restore(torch.load(Path(directory) / STATE_FILE, map_location="cpu", weights_only=True))

    def restore(self, state: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Restore the states of a saved training state (as `read_state` gives it); returns (finished
        epochs, metrics of the last one)."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["torch_rng"])
        self.generator.set_state(state["batch_rng"])
        if self.extras is not None and "extras" in state:
            self.extras.load_state_dict(state["extras"])
        return int(state["epoch"]), dict(state["metrics"])


def write_state(directory: str | Path, state: dict[str, Any]) -> Path:
    """Write `state` as `directory`/state.pt under a temporary name, then rename it: a process stopped mid-write
    (killed, out of disk space) never leaves a partial file under the checkpoint's name."""
    path = Path(directory) / STATE_FILE
    partial = path.with_name(f".{STATE_FILE}.partial")
    torch.save(state, partial)
    os.replace(partial, path)
    return path


def load_weights(directory: str | Path) -> dict[str, torch.Tensor]:
    """The model weights (state_dict) of a checkpoint directory: those evaluated (the weights' moving
    average, where the training keeps one), else the model's."""
    state = torch.load(Path(directory) / STATE_FILE, map_location="cpu", weights_only=True)
    return state.get("evaluated", state["model"])


UNREADABLE = (OSError, RuntimeError, EOFError, pickle.UnpicklingError, KeyError, ValueError)


def read_state(directory: str | Path) -> tuple[dict[str, Any] | None, str | None]:
    """(the saved training state, None), or (None, why `directory` holds no whole checkpoint: a copy cut
    short by a killed process, a full disk, a damaged file, in a few words)."""
    path = Path(directory) / STATE_FILE
    try:
        if path.is_file() and path.stat().st_size == 0:
            return None, "an empty file"
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or "model" not in state or "epoch" not in state:
            return None, "not a training state"
    except FileNotFoundError:
        return None, f"no {STATE_FILE}"
    except UNREADABLE as error:
        return None, " ".join(f"{type(error).__name__}: {error}".split())[:120]
    return state, None


def unreadable_reason(directory: str | Path) -> str | None:
    """Why `directory` holds no whole checkpoint; None when it loads."""
    return read_state(directory)[1]


def is_readable(directory: str | Path) -> bool:
    """Whether `directory` holds a whole checkpoint."""
    return unreadable_reason(directory) is None
