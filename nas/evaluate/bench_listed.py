"""Training a table's missing architectures: a build continued from its `table.json` alone, and the
retraining of a table's architectures with another seed (`nas bench reseed`).

    wanted = seeded_sample(config, data)                  # the build's sample: first `trials` distinct archs
    fill_table(config, run, "bench/c/table.json", wanted, meta)

The sample of a build is fixed by its seed: the random strategy draws distinct architectures one after
another, its draws never depend on results, so the first N distinct architectures it draws (`seeded_sample`)
are the build's, in the build's order. An architecture's training is seeded by the recipe's seed mixed with
its fingerprint (`nas.train.loop.trial_seed`), not by its place in the run, so it trains the same in any
session. A table therefore holds all a build needs to continue: `fill_table` trains the architectures of
`wanted` the table lacks, as a search whose strategy proposes exactly those (`ListedSearcher`, in a run
folder of its own that Ray Tune resumes like any search's), and writes the table again with every
architecture in `wanted`'s order, the cost of the session added to the table's ``cost``.
"""
from __future__ import annotations

import copy
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas.engine.folder import check_not_in_use, contents
from nas.engine.records import CONFIG_JSON, read_trials
from nas.errors import NasError
from nas.evaluate.table import Entry, Table, table_from_run
from nas.genome import Genome
from nas.search.strategies.base import FINISHED, Proposal, SpaceSearcher
from nas.search.strategies.options import option


class FillError(NasError):
    """A table cannot be continued (another build's table or run, a finished run in the way)."""


class ListedSearcher(SpaceSearcher):
    """Proposes the samples of its `samples` option, in order, then finishes (a table's missing architectures).
    Given to `run_search` from Python; not a strategy of `nas search`."""

    name = "listed"

    @dataclass(frozen=True)
    class Options:
        samples: list[dict[str, Any]] = option([], "the samples to propose, in order")

    def setup(self) -> None:
        self.next = 0

    def ask(self) -> Proposal | str:
        samples = self.options["samples"]
        if self.next >= len(samples):
            return FINISHED
        self.next += 1
        return Proposal(copy.deepcopy(samples[self.next - 1]))

    def tell(self, proposal: Proposal, outcome: dict[str, float] | None) -> None:
        pass  # a list learns nothing

    def core_state(self) -> dict[str, Any]:
        return {"next": self.next}

    def set_core_state(self, state: dict[str, Any]) -> None:
        self.next = state["next"]


LISTED = f"{ListedSearcher.__module__}:{ListedSearcher.__qualname__}"


def seeded_sample(config, data) -> list[dict[str, Any]]:
    """The first `config.trials` distinct architectures the build's strategy (seeded with `config.seed`)
    proposes, as the trials receive them ({"genome", "sample", "fingerprint"}), in the order it proposes them:
    the sample a build trains, whichever trials finish first."""
    from nas.search.run import make_strategy  # deferred: torch, Ray (the table commands check their input first)

    searcher = make_strategy(config, data)
    sample: list[dict[str, Any]] = []
    while len(sample) < config.trials:
        suggestion = searcher.suggest(f"sample-{len(sample)}")
        if suggestion == FINISHED:
            break
        if suggestion is None:  # every draw repeated one in flight: a run would wait for them, then draw on
            for trial_id in list(searcher.pending):
                searcher.on_trial_complete(trial_id, {"val_accuracy": 0.0})
            continue
        sample.append(suggestion)
    return sample


class Keys:
    """Where each architecture of `wanted` is in it: by fingerprint, confirmed by the genome as written or,
    written otherwise, by genome equality (as a table's lookup)."""

    def __init__(self, wanted: Sequence[Mapping[str, Any]]):
        self.wanted = wanted
        self.places: dict[str, list[int]] = {}
        for i, w in enumerate(wanted):
            self.places.setdefault(w["fingerprint"], []).append(i)

    def index(self, fingerprint: str, genome: Mapping[str, Any]) -> int | None:
        places = self.places.get(fingerprint, [])
        for i in places:
            if self.wanted[i]["genome"] == genome:
                return i
        built = Genome.from_dict(genome) if places else None
        return next((i for i in places if Genome.from_dict(self.wanted[i]["genome"]) == built), None)


def merged(wanted: Sequence[Mapping[str, Any]], *tables: Table | None) -> list[Entry]:
    """The entries of `tables` (a later one's replacing an earlier one's), in `wanted`'s order."""
    keys, chosen = Keys(wanted), {}
    for table in tables:
        for entry in (table.entries if table is not None else ()):
            place = keys.index(entry.fingerprint, entry.genome)
            if place is not None:
                chosen[place] = entry
    return [chosen[i] for i in sorted(chosen)]


def outside(wanted: Sequence[Mapping[str, Any]], table: Table) -> list[Entry]:
    """The entries of `table` that are not architectures of `wanted`."""
    keys = Keys(wanted)
    return [e for e in table.entries if keys.index(e.fingerprint, e.genome) is None]


# ----- cost -----
def session_start() -> dict[str, Any]:
    return {"started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "_wall": time.perf_counter(),
            "_cpu": time.process_time()}


def with_cost(table: Table, before: Table | None, session: dict[str, Any] | None, **facts: Any) -> Table:
    """`table` with its ``cost``: CPU seconds (`cpu_s`) and trial wall seconds (`train_s`, build and epochs) summed
    over its architectures (each entry holds its own), and the sessions that trained them: those `before`
    recorded and this `session` (from `session_start`; None: none), with its wall and driver CPU seconds, the
    architectures it added and their CPU seconds, and `facts` (e.g. concurrent=2, interrupted=False)."""
    sessions = list(((before.meta.get("cost") or {}).get("sessions") or []) if before is not None else [])
    if session is not None:
        old = {e.fingerprint for e in before.entries} if before is not None else set()
        new = [e for e in table.entries if e.fingerprint not in old]
        sessions.append({"started_at": session["started_at"],
                         "wall_s": round(time.perf_counter() - session["_wall"], 1),
                         "driver_cpu_s": round(time.process_time() - session["_cpu"], 1),
                         "trained": len(new), "trained_cpu_s": round(sum(e.cpu_s for e in new), 1),
                         "cores": os.cpu_count(), **facts})
    table.meta["cost"] = {"cpu_s": round(sum(e.cpu_s for e in table.entries), 1),
                          "train_s": round(sum(e.train_time for e in table.entries), 1),
                          "gpu_s": round(sum(e.gpu_s for e in table.entries), 1),
                          "sessions_wall_s": round(sum(s.get("wall_s", 0.0) for s in sessions), 1),
                          "sessions": sessions}
    return table


def cost_line(table: Table) -> str:
    """What a table cost, in one line."""
    cost = table.meta.get("cost") or {}
    cpu, n = cost.get("cpu_s", sum(e.cpu_s for e in table.entries)), max(1, len(table))
    sessions = cost.get("sessions") or []
    line = f"training cost {cpu / 3600:.3f} CPU-hours ({cpu / n:.1f} CPU s per architecture)"
    if sessions:
        counted = sum(s.get("trained", 0) for s in sessions)
        line += (f"; {cost.get('sessions_wall_s', 0.0) / 3600:.3f} wall hours over {len(sessions)} recorded "
                 f"session{'s' if len(sessions) != 1 else ''} ({counted} of the architectures)")
    return line


# ----- the run folder -----
def run_state(run: Path) -> str:
    """What `run` holds: "none" (nothing, or a search that never got going), "listed" (a listed search to
    resume or read), "search" (another search, e.g. the build's own random one), or "damaged" (not a run
    that can be resumed: no readable search.json, or no Ray Tune experiment where trials were recorded)."""
    from nas.engine.experiment import can_restore  # deferred: torch, Ray
    from nas.search.run_folder import read_config, started  # deferred: torch, Ray

    if not run.is_dir() or not contents(run):
        return "none"
    try:
        spec = json.loads((run / CONFIG_JSON).read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        spec = None
    if not isinstance(spec, dict):
        return "damaged"
    saved = read_config(run)  # a plug-in it needs and this installation lacks: said in one line
    if not started(run):
        return "none"
    if not can_restore(run):
        return "damaged"
    return "listed" if saved.searcher == LISTED else "search"


def set_aside(run: Path) -> Path:
    """Rename the damaged run folder `run` to ``<run>.damaged`` (``.damaged-2``, ... when taken): kept, not read."""
    target, k = run.with_name(f"{run.name}.damaged"), 1
    while target.exists():
        k += 1
        target = run.with_name(f"{run.name}.damaged-{k}")
    run.rename(target)
    return target


# the search settings that make a table's architectures and their training (not the strategy nor their number)
SAMPLE_SETTINGS = ("space", "dataset", "val_fraction", "train_limit", "seed", "train", "evaluate")


def defining_differences(saved, config, names: Sequence[str] = SAMPLE_SETTINGS) -> list[str]:
    """Those of the search settings `names` in which the search configs `saved` and `config` differ."""
    return [name for name in names if getattr(saved, name) != getattr(config, name)]


def fill_table(config, space, run: str | Path, table_path: str | Path, wanted: Sequence[Mapping[str, Any]],
               meta: Mapping[str, Any], *, before: Table | None, address: str | None = None, verbose: bool = True,
               library_logs: bool = False, say: Callable[[str], None] = print) -> tuple[Table, Any, bool]:
    """Train the architectures of `wanted` (of `space`, realized for the data set) that the table `before` (the
    one at `table_path`, or None) lacks, in the run folder `run` (its listed search resumed when it has one; a
    damaged one set aside), and write the table of every architecture of `wanted` trained so far, in
    `wanted`'s order, with `meta` and its cost.
    Returns (the table, the search's outcome or None, whether it is complete)."""
    from nas.search.run import read_config, run_search  # deferred: torch, Ray

    run, table_path = Path(run), Path(table_path)
    session = session_start()
    state = run_state(run)
    if state != "none":
        check_not_in_use(run, "search")
    if state == "damaged":
        say(f"{run} cannot be resumed (no readable search.json or Ray Tune experiment); set aside as "
            f"{set_aside(run)}; continuing from {table_path.name}")
    elif state == "search":
        raise FillError(f"{run} holds another search; move it away to continue the table from {table_path.name}")
    trained: Table | None = None
    failed: set[int] = set()
    finished_run = False
    if state == "listed":
        saved = read_config(run)
        differ = defining_differences(saved, config)
        if differ:
            raise FillError(f"{run} holds a run made with other settings ({', '.join(differ)}): run the command "
                            f"that started it, or choose another folder")
        from nas.evaluate.bench import finished  # deferred: a cycle (nas.evaluate.bench imports this module)

        finished_run = finished(run)
        trained = table_from_run(run, meta)
        failed = failures(run, wanted)
    keys = Keys(wanted)
    have = merged(wanted, before, trained)
    held = {keys.index(e.fingerprint, e.genome) for e in have}
    rest = [w for i, w in enumerate(wanted) if i not in held and i not in failed]
    outcome, interrupted = None, None
    if state == "listed" and not finished_run:
        say(f"table has {len(have)} of {len(wanted)}; resuming the run in {run} (to train: {len(rest)})")
        again = ListedSearcher(space, seed=config.seed, max_trials=read_config(run).trials)  # its list: Tune's saved state
        outcome = run_search(None, run, resume=True, address=address, verbose=verbose, library_logs=library_logs,
                             searcher=again)
        interrupted = outcome.interrupted
    elif rest and state == "listed":
        raise FillError(f"{run} holds a finished run (its architectures are in {table_path.name}); remove that "
                        f"folder (only its checkpoints go) to train the {len(rest)} more")
    else:
        say(f"table has {len(have)} of {len(wanted)}; training {len(rest)}")
        if rest:
            listed = copy.copy(config)
            listed.trials = len(rest)
            listed.__post_init__()
            outcome = run_search(listed, run, address=address, verbose=verbose, library_logs=library_logs,
                                 searcher=ListedSearcher(space, seed=config.seed, max_trials=len(rest),
                                                         options={"samples": [w["sample"] for w in rest]}))
            interrupted = outcome.interrupted
    if outcome is not None:
        trained = table_from_run(run, meta)
    entries = merged(wanted, before, trained)
    complete = interrupted is None
    table = Table({**meta, "complete": complete, "archs": len(entries)}, entries)
    with_cost(table, before, session if outcome is not None else None, concurrent=config.concurrent,
              interrupted=interrupted is not None)
    table.save(table_path)
    return table, outcome, complete


def failures(run: Path, wanted: Sequence[Mapping[str, Any]]) -> set[int]:
    """The places in `wanted` of the architectures whose trials failed in `run`."""
    keys = Keys(wanted)
    places = set()
    for record in read_trials(run):
        if record.get("status") == "ERROR" and record.get("genome"):
            place = keys.index(record["fingerprint"], record["genome"])
            if place is not None:
                places.add(place)
    return places
