"""Data-parallel training on CPU cores: `workers` processes of one thread each, gradients averaged by
PyTorch's DistributedDataParallel over gloo. For `nas train` / `nas.fit(..., workers=2)`: one network
trained on every core of one machine (inside a search, trials already run one per core).

Semantics, against one process with the same settings:

- the same step: every optimizer step sees one batch of `batch_size` images, dealt evenly to the workers
  (`batch_size / workers` each); DDP averages their gradients, so the gradient is that of the whole
  batch, and the learning rate, schedule (steps per epoch) and weight decay are unchanged;
- the same start: the initial weights are those one process would start from (same seed);
- batch norm normalises over each worker's share of the batch (`batch_size / workers` images, "ghost
  batch norm"); its running statistics are averaged over the workers after every epoch;
- the order differs: each epoch one permutation (seeded as one process's) is dealt round-robin to the
  workers, each shuffles and augments its share with a generator of its own; so results are equal in
  kind, not bit for bit, to one process's. For a fixed seed and worker count a run repeats exactly.

`batch_size` must be divisible by `workers`. Settings this module does not know (added to
`TrainSettings` later) are refused when they differ from their defaults, never silently ignored.
"""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import fields, replace
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from nas.compiler import build
from nas.errors import NasError
from nas.genome import Genome
from nas.train.datasets import DatasetSplits, Split
from nas.train.failures import TrialFailure
from nas.train.loop import (Precision, evaluate, make_optimizer, make_scheduler, steps_per_epoch, train_epoch,
                            trial_seed)
from nas.train.settings import TrainSettings
from nas.train.speed import resolve_channels_last

# TrainSettings fields this module implements (any other one must keep its default)
SUPPORTED = frozenset({
    "epochs", "batch_size", "optimizer", "lr", "weight_decay", "momentum", "nesterov", "schedule",
    "label_smoothing", "augment", "precision", "channels_last", "max_params", "max_flops", "checkpoint_every",
    "eval_batch_size", "seed", "test_at_end",
})
JOB, EPOCHS, RESULT, FAILED = "job.pt", "epochs.jsonl", "result.pt", "failed.txt"  # in the workers' folder
MIN_IMAGES = 20_000  # `auto`: below this many training images x epochs, starting the workers does not pay


class ParallelError(NasError):
    """Data-parallel training cannot run with these settings, or a worker failed."""


def cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def auto_workers(settings: TrainSettings, train_size: int, device: torch.device) -> int:
    """What `workers="auto"` means: every core (up to the largest count that divides the batch size into
    shares of at least 8 images) on a CPU when there is enough work; 1 on a GPU or for small trainings."""
    if device.type != "cpu" or train_size * settings.epochs < MIN_IMAGES:
        return 1
    for count in range(cores(), 1, -1):
        if settings.batch_size % count == 0 and settings.batch_size // count >= 8:
            return count
    return 1


def check(settings: TrainSettings, workers: int, device: torch.device) -> None:
    """Refuse, in one line, what data-parallel training cannot do."""
    if device.type != "cpu":
        raise ParallelError(f"workers={workers}: data-parallel training runs on CPU cores; on {device.type} use "
                            "workers=1")
    if settings.batch_size % workers:
        raise ParallelError(f"workers={workers}: the batch size ({settings.batch_size}) must be divisible by the "
                            "number of workers")
    defaults = TrainSettings()
    unknown = [f.name for f in fields(TrainSettings)
               if f.name not in SUPPORTED and getattr(settings, f.name) != getattr(defaults, f.name)]
    if unknown:
        raise ParallelError(f"workers={workers}: setting {unknown[0]!r} is not supported by data-parallel "
                            "training; use workers=1")


def shard(split: Split, rank: int, world: int, order: torch.Tensor | None = None) -> Split:
    """This worker's share of `split`: every `world`-th image of `order` (default: as stored), all shares
    of equal length (up to `world - 1` images left out)."""
    index = order if order is not None else torch.arange(len(split))
    index = index[:len(index) - len(index) % world][rank::world]
    return Split(split.x[index], split.y[index])


def sharded_accuracy(model: nn.Module, data: DatasetSplits, split: Split, precision: Precision, batch_size: int,
                     channels_last: bool, rank: int, world: int) -> float:
    """Top-1 accuracy on the whole of `split`, each worker evaluating every `world`-th image."""
    index = torch.arange(len(split))[rank::world]
    part = Split(split.x[index], split.y[index])
    correct = round(evaluate(model, data, part, precision, batch_size, channels_last) * len(part))
    total = torch.tensor([correct], dtype=torch.int64)
    dist.all_reduce(total)
    return int(total) / max(1, len(split))


def average_buffers(model: nn.Module, world: int) -> None:
    """Batch norm's running statistics (every floating-point buffer) averaged over the workers."""
    for buffer in model.buffers():
        if buffer.is_floating_point():
            dist.all_reduce(buffer)
            buffer.div_(world)


def _worker(rank: int, world: int, folder: Path) -> None:
    """One worker process (`python -m nas.train.parallel RANK WORLD FOLDER`): the job from FOLDER/job.pt; rank 0
    appends each epoch's record to FOLDER/epochs.jsonl and writes FOLDER/result.pt (or failed.txt)."""
    torch.set_num_threads(1)
    job = torch.load(folder / JOB, map_location="cpu", weights_only=False)  # our own file, written by run_workers
    dist.init_process_group("gloo", init_method=f"file://{folder / 'rendezvous'}", rank=rank, world_size=world)
    try:
        _train_worker(rank, world, Genome.from_dict(job["genome"]), job["data"], TrainSettings.from_dict(job["settings"]),
                      job["initial"], folder)
        dist.barrier()  # every rank done with its collectives (rank 0: its result written) before any leaves
    except TrialFailure as failure:
        if rank == 0:
            (folder / FAILED).write_text(str(failure))
    finally:
        dist.destroy_process_group()


def _train_worker(rank: int, world: int, genome: Genome, data: DatasetSplits, settings: TrainSettings,
                  initial: Mapping[str, torch.Tensor], folder: Path) -> None:
    device = torch.device("cpu")
    fingerprint = genome.fingerprint()
    precision = Precision.choose(settings.precision, device)
    channels_last = resolve_channels_last(settings.channels_last, device)
    model = build(genome)
    model.load_state_dict(initial)
    model = model.to(memory_format=torch.channels_last if channels_last else torch.preserve_format)
    torch.manual_seed(trial_seed(settings.seed, f"{fingerprint}/{rank}"))  # dropout, drop-path: per worker
    order = torch.Generator().manual_seed(trial_seed(settings.seed + 1, fingerprint))  # the same in every worker
    own = torch.Generator().manual_seed(trial_seed(settings.seed + 1, f"{fingerprint}/{rank}/{world}"))
    ddp = DistributedDataParallel(model, broadcast_buffers=False)
    share = replace(settings, batch_size=settings.batch_size // world)
    share_size = (len(data.train) - len(data.train) % world) // world
    optimizer = make_optimizer(ddp.module, share)
    scheduler = make_scheduler(optimizer, share, steps_per_epoch(share_size, share.batch_size))
    scaler = precision.scaler()
    accuracy = float("nan")
    for epoch in range(1, settings.epochs + 1):
        started = time.perf_counter()
        part = shard(data.train, rank, world, torch.randperm(len(data.train), generator=order))
        try:
            loss = train_epoch(ddp, data, part, optimizer, scheduler, scaler, precision, share, own, epoch,
                               channels_last)
        except TrialFailure:
            loss = float("nan")
        mean = torch.tensor([loss], dtype=torch.float64)
        dist.all_reduce(mean)
        loss = float(mean) / world
        if not math.isfinite(loss):
            raise TrialFailure(f"loss became {'NaN' if math.isnan(loss) else 'inf'} at epoch {epoch}")
        average_buffers(ddp.module, world)
        accuracy = sharded_accuracy(ddp.module, data, data.val, precision, settings.eval_batch_size, channels_last,
                                    rank, world)
        if rank == 0:
            record = {"epoch": epoch, "train_loss": loss, "val_accuracy": accuracy,
                      "epoch_time": time.perf_counter() - started}
            with open(folder / EPOCHS, "a") as file:
                file.write(json.dumps(record) + "\n")
    test = sharded_accuracy(ddp.module, data, data.test, precision, settings.eval_batch_size, channels_last,
                            rank, world)
    if rank == 0:
        state = {k: v.detach().contiguous() for k, v in ddp.module.state_dict().items()}
        torch.save({"state": state, "val_accuracy": accuracy, "test_accuracy": test}, folder / "result.part")
        os.replace(folder / "result.part", folder / RESULT)


def run_workers(genome: Genome, data: DatasetSplits, settings: TrainSettings, initial: Mapping[str, torch.Tensor],
                workers: int, progress: Callable[[dict[str, float]], None] | None = None
                ) -> tuple[dict[str, torch.Tensor], list[dict[str, float]], float, float]:
    """Train in `workers` processes; the final weights, per-epoch history, validation and test accuracy.

    The workers are fresh interpreters (`python -m nas.train.parallel`), in a session of their own (Ctrl-C
    reaches this process, which ends them), exchanging files in a temporary folder. Raises TrialFailure
    (a loss no longer finite) or ParallelError (a worker died or raised: its last line of output).
    """
    history: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="nas-parallel-") as name:
        folder = Path(name)
        torch.save({"genome": genome.to_dict(), "data": data, "settings": settings.to_dict(),
                    "initial": {k: v.detach().to("cpu") for k, v in initial.items()}}, folder / JOB)
        root = str(Path(__file__).resolve().parents[2])
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
               "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
        processes, logs = [], []
        try:
            for rank in range(workers):
                logs.append(open(folder / f"worker{rank}.log", "wb"))
                processes.append(subprocess.Popen(
                    [sys.executable, "-m", "nas.train.parallel", str(rank), str(workers), str(folder)],
                    stdin=subprocess.DEVNULL, stdout=logs[-1], stderr=subprocess.STDOUT, env=env,
                    start_new_session=True))
            seen = 0
            while True:
                codes = [process.poll() for process in processes]
                seen = _new_epochs(folder / EPOCHS, seen, history, progress)
                failed = next((rank for rank, code in enumerate(codes) if code not in (None, 0)), None)
                if failed is not None:
                    raise ParallelError(f"data-parallel worker {failed} failed "
                                        f"({_how(codes[failed])}): {_last_line(folder / f'worker{failed}.log')}")
                if all(code == 0 for code in codes):
                    break
                time.sleep(0.1)
        finally:
            for process in processes:
                if process.poll() is None:
                    process.kill()
            for process in processes:
                process.wait()
            for log in logs:
                log.close()
        if (folder / FAILED).exists():
            raise TrialFailure((folder / FAILED).read_text())
        if not (folder / RESULT).exists():
            raise ParallelError("data-parallel workers ended without a result")
        result = torch.load(folder / RESULT, map_location="cpu", weights_only=True)
    return result["state"], history, result["val_accuracy"], result["test_accuracy"]


def _new_epochs(path: Path, seen: int, history: list, progress) -> int:
    """Records rank 0 appended since `seen` lines; each passed to `progress`. The new count of lines."""
    if not path.exists():
        return seen
    lines = path.read_text().splitlines(keepends=True)
    complete = [line for line in lines[seen:] if line.endswith("\n")]
    for line in complete:
        history.append(json.loads(line))
        if progress is not None:
            progress(history[-1])
    return seen + len(complete)


def _how(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit status {code}"


def _last_line(path: Path) -> str:
    lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def resolve_workers(workers: int | str, settings: TrainSettings, train_size: int, device: torch.device) -> int:
    """`workers` as a count ("auto": `auto_workers`); a bad value is one line."""
    if workers == "auto":
        return auto_workers(settings, train_size, device)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ParallelError(f"workers must be a positive integer or 'auto', got {workers!r}")
    return workers


def train_data_parallel(genome: Genome, data: DatasetSplits, settings: TrainSettings, state, weights,
                        folder: Path | None, device, progress, workers: int | str):
    """`nas.train.fit.train`'s training with `workers` processes (one process when it resolves to 1):
    the same initial weights, result and files."""
    from nas.train import fit  # a cycle: nas.train.fit imports this module

    device = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
    count = resolve_workers(workers, settings, len(data.train), device)
    if count == 1:
        return fit._train(genome, data, settings, state, weights, folder, device, progress)
    check(settings, count, device)
    torch.manual_seed(trial_seed(settings.seed, genome.fingerprint()))  # as one process starts
    model = build(genome)
    skipped = fit.load_matching(model, state, str(weights) if not isinstance(weights, Mapping) else "weights") \
        if state is not None else []
    trained, history, accuracy, test = run_workers(genome, data, settings, model.state_dict(), count, progress)
    model.load_state_dict(trained)
    model.eval()
    result = fit.TrainResult(model, genome, test, accuracy, settings, history, skipped)
    if folder is not None:
        try:
            fit.write_result(folder, result, data)
        except OSError as error:  # a full disk, a folder removed meanwhile
            raise fit.TrainError(f"{folder}: cannot write the result ({error.strerror or error})") from None
    return result


__all__ = ["ParallelError", "auto_workers", "check", "resolve_workers", "run_workers", "shard",
           "train_data_parallel"]


if __name__ == "__main__":
    _worker(int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]))
    # done, its files written and closed: leave without the interpreter's teardown, in which gloo's
    # threads can abort the process ("terminate called without an active exception": seen once in CI)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
