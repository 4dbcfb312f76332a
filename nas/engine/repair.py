"""Before a killed search resumes: give each unfinished trial back the checkpoint Ray Tune's snapshot names.

A search keeps one checkpoint per trial (``CheckpointConfig(num_to_keep=1)``): when a trial reports
a newer checkpoint, Ray Tune deletes the older one at once, and rewrites its experiment snapshot only
later. A driver killed in between leaves a snapshot that names a deleted checkpoint, and on resume
Tune fails that trial ("Could not recover from checkpoint as it does not exist on storage anymore").
The newer checkpoint is still in the trial's folder, whole (a trial reports a checkpoint only once it
is written). `restore_named_checkpoints` moves the newest readable one to the path the snapshot names
(the trainable reads its epoch from the checkpoint itself, so it continues from there) and removes the
trial's other checkpoint folders, so that Tune's own numbering goes on without clashes.

A named checkpoint that exists but cannot be read (truncated, damaged) is reported, file by name; the
trainable then starts that trial again from scratch (`nas.train.trainable`): one trial's progress is
lost, never the trial.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from ray.tune import ExperimentAnalysis

from nas.engine.records import UNFINISHED
from nas.train.checkpointing import STATE_FILE, is_readable, unreadable_reason


def restore_named_checkpoints(tune_dir: str | Path, verbose: bool = False) -> list[str]:
    """Repair every unfinished trial whose named checkpoint is gone; one line per repair (printed if `verbose`)."""
    repaired = []
    for trial in ExperimentAnalysis(str(tune_dir)).trials:
        checkpoint = trial.checkpoint
        if trial.status not in UNFINISHED or checkpoint is None:
            continue
        named = Path(checkpoint.path)
        if named.exists():
            damage = unreadable_reason(named)
            if damage:  # cut short or damaged: the trainable starts the trial again from scratch
                repaired.append(f"trial {trial.trial_id}: its checkpoint {named / STATE_FILE} is damaged "
                                f"({damage}); the trial starts again from scratch")
                if verbose:
                    print(repaired[-1], flush=True)
            continue
        newer = sorted((p for p in Path(trial.path).glob("checkpoint_*") if p.name > named.name), reverse=True)
        usable = next((p for p in newer if is_readable(p)), None)
        if usable is None:
            continue  # nothing to give back: Tune fails the trial with its own message
        usable.rename(named)
        for stale in newer:
            if stale != usable:
                shutil.rmtree(stale, ignore_errors=True)
        repaired.append(f"trial {trial.trial_id}: continues from {usable.name} (the snapshot named {named.name}, "
                        "which a newer checkpoint had replaced)")
        if verbose:
            print(repaired[-1], flush=True)
    return repaired
