"""A trial's checkpoint: everything needed to continue training mid-way, in one file.

``state.pt`` holds the model, optimizer, schedule and gradient-scaler states, the number of
finished epochs, the metrics reported after that epoch, and the random states (torch's and the
batch-order generator's), so a resumed trial continues exactly where it stopped.
"""
from __future__ import annotations

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

    def save(self, directory: str | Path, epoch: int, metrics: dict[str, Any]) -> Path:
        path = Path(directory) / STATE_FILE
        torch.save({
            "epoch": epoch,
            "metrics": metrics,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "batch_rng": self.generator.get_state(),
        }, path)
        return path

    def load(self, directory: str | Path) -> tuple[int, dict[str, Any]]:
        """Restore the states saved in `directory`; returns (finished epochs, metrics of the last one)."""
        state = torch.load(Path(directory) / STATE_FILE, map_location="cpu", weights_only=True)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["torch_rng"])
        self.generator.set_state(state["batch_rng"])
        return int(state["epoch"]), dict(state["metrics"])


def load_weights(directory: str | Path) -> dict[str, torch.Tensor]:
    """The model weights (state_dict) of a checkpoint directory."""
    return torch.load(Path(directory) / STATE_FILE, map_location="cpu", weights_only=True)["model"]


def is_readable(directory: str | Path) -> bool:
    """Whether `directory` holds a whole checkpoint (a copy cut short by a killed process does not load)."""
    try:
        torch.load(Path(directory) / STATE_FILE, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError):
        return False
    return True
