"""Optuna's samplers through Optuna's own ask-and-tell interface: TPE, or NSGA-II for several objectives.

Each proposal is one trial of an Optuna study (`study.ask()`), whose choices are sampled in the space's
order with `trial.suggest_categorical`, only when active (conditional choices); options whose values are
not plain scalars (e.g. lists) are suggested by index. An outcome goes back with `study.tell` (the
objective values, or the state FAIL). Only Optuna's public API is used, so a new Optuna (or Ray)
release cannot break saving and restoring.

Options: `sampler` ("tpe" or "nsga2"), `objectives` (metric names; default: the searcher's metric;
two or more need nsga2, as Optuna's default sampler is TPE), `directions` ("max"/"min" per objective;
default: `mode` for the metric, min for params/flops/epoch_time, else max), `startup_trials` (TPE's
random start, default 10) and `population` (NSGA-II's population, default clamp(max_trials // 4, 4, 50);
Optuna's own default is 50).

State: the study is the whole state. Its sampler is made anew for every step, seeded from the search's
seed and the study's trial count (a sampler learns only from the study's trials), so nothing but the
study is saved: without a storage, the in-memory study, pickled with its storage as Optuna's
documentation describes for saving a study (no sampler inside: NSGA-II's cannot be pickled).

Storage (`storage`, an Optuna RDB URL such as ``sqlite:///study.db``; `study_name`, which `nas search
--storage` sets to the run folder's name): the study lives in that database, where optuna-dashboard
and `optuna.load_study` find it; a restored searcher (`--resume`) loads it from there. A trial the
storage has already finished (it ended after the searcher's last snapshot and Tune runs it again) is
not told twice, and trials the storage holds as running that no restored proposal waits for (asked
after the snapshot) are marked failed.

Every told trial carries the search's trial number (`trial`, as the screen and trials.csv number it: a
proposal answered from an earlier trial has none, and Optuna's own `number` counts those too), the
genome's fingerprint, params and FLOPs as user attributes.
"""
from __future__ import annotations

from dataclasses import dataclass

import contextlib
import pickle
import random
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

# optuna is imported where it is used: listing the strategies (`nas --help`, the argument checks) imports
# this module, and optuna takes a second to import. The name below is for the annotations only.
if TYPE_CHECKING:
    import optuna

from nas.search.strategies.base import MINIMIZED, Proposal, SpaceSearcher, StrategyError
from nas.search.strategies import strategy
from nas.search.strategies.options import option
from nas.spaces.base import Choice, SearchSpace

SCALARS = (str, int, float, bool, type(None))
OPTUNA_DIRECTIONS = {"max": "maximize", "min": "minimize"}
USER_ATTRIBUTES = ("trial", "fingerprint", "params", "flops")  # what a told trial carries (when known); "trial":
# the search's trial number (the screen's, trials.csv's), which Optuna's own 0-based trial.number need not match


def _by_index(choice: Choice) -> bool:
    return not all(isinstance(option, SCALARS) for option in choice.options)


def suggest_sample(space: SearchSpace, trial: optuna.Trial) -> dict[str, Any]:
    """One sample of `space` from an Optuna trial: the active choices in order, each suggested as a
    categorical (by index when its options are not plain scalars)."""
    values: dict[str, Any] = {}
    for choice in space.choices:
        if not choice.is_active(values):
            continue
        if _by_index(choice):
            index = trial.suggest_categorical(choice.name, list(range(len(choice.options))))
            values[choice.name] = choice.options[index]
        else:
            values[choice.name] = trial.suggest_categorical(choice.name, list(choice.options))
    return values


@strategy
class OptunaSearcher(SpaceSearcher):
    name = "optuna"
    @dataclass(frozen=True)
    class Options:
        sampler: str = option("tpe", "tpe or nsga2 (several objectives need nsga2)", choices=("tpe", "nsga2"))
        objectives: list[str] | None = option(None, "metrics to optimise, e.g. [val_accuracy, params]; none: "
                                                    "val_accuracy")
        directions: list[str] | None = option(None, "max or min per objective; none: min for params/flops/epoch_time, "
                                                    "else max", choices=("max", "min"))
        startup_trials: int = option(10, "TPE: random trials before the model is used", minimum=0)
        population: int | None = option(None, "NSGA-II population; none: clamp(trials // 4, 4, 50)", minimum=1)
        storage: str | None = option(None, "an Optuna storage URL (e.g. sqlite:///study.db) that keeps the study "
                                           "(--storage); none: in memory")
        study_name: str | None = option(None, "the study's name in the storage; none: the run folder's name")

    def setup(self) -> None:
        import optuna  # deferred (see the module's imports)

        o = self.options
        self.objective_names = list(o["objectives"] or [self.metric])
        directions = o["directions"] or [self._default_direction(name) for name in self.objective_names]
        if len(directions) != len(self.objective_names) or any(d not in ("min", "max") for d in directions):
            raise StrategyError(f"directions must be 'min' or 'max', one per objective {self.objective_names}, got {directions}")
        self.directions = list(directions)
        if o["sampler"] not in SAMPLERS:
            raise StrategyError(f"unknown Optuna sampler {o['sampler']!r} (known: {', '.join(SAMPLERS)})")
        if len(self.objective_names) > 1 and o["sampler"] != "nsga2":
            raise StrategyError("several objectives need sampler 'nsga2'")
        url = self.options["storage"]
        self.study = optuna.create_study(storage=open_storage(url) if url else None,
                                         study_name=self._study_name() if url else None, sampler=idle_sampler(),
                                         directions=[OPTUNA_DIRECTIONS[d] for d in self.directions],
                                         load_if_exists=True)
        self.live_trials: dict[int, optuna.Trial] = {}  # trials asked and not yet told, by number (not saved)

    def _study_name(self) -> str:
        return self.options["study_name"] or "nas"

    def _default_direction(self, name: str) -> str:
        if name == self.metric:
            return self.mode
        return "min" if name in MINIMIZED else "max"

    @contextlib.contextmanager
    def sampling(self) -> Iterator[None]:
        """The study's sampler for one step (an ask and its suggestions, or a tell): made anew, seeded from
        the search's seed and the study's trial count. A sampler keeps no state of its own between steps
        (what it learns, it reads from the study's trials), so the study alone is the strategy's state,
        and it saves and restores without pickling a sampler (NSGA-II's holds a thread lock)."""
        count = len(self.study.get_trials(deepcopy=False))
        seed = random.Random(f"{self.seed}:{count}").getrandbits(32)
        self.study.sampler = SAMPLERS[self.options["sampler"]](self, seed)
        try:
            yield
        finally:
            self.study.sampler = idle_sampler()

    def objectives(self) -> list[str]:
        return self.objective_names

    def ask(self) -> Proposal:
        with self.sampling():
            trial = self.study.ask()
            sample = suggest_sample(self.space, trial)
        self.live_trials[trial.number] = trial
        return Proposal(sample, token=trial.number)

    def tell(self, proposal: Proposal, outcome: dict[str, float] | None) -> None:
        import optuna  # deferred (see the module's imports)

        number = proposal.token
        if self._finished(number):
            return  # told before an interruption (the storage kept it): not twice
        trial = self.live_trials.pop(number, None)  # (a proposal restored from a snapshot has none: no attributes)
        if trial is not None:
            for name in USER_ATTRIBUTES:
                value = (outcome or {}).get(name, proposal.meta.get(name))
                if value is not None:
                    trial.set_user_attr(name, value)
        with self.sampling():
            if outcome is None:
                self.study.tell(number, state=optuna.trial.TrialState.FAIL)
            else:
                self.study.tell(number, [outcome[name] for name in self.objective_names])

    def _finished(self, number: int) -> bool:
        trials = self.study.get_trials(deepcopy=False)
        return number < len(trials) and trials[number].state.is_finished()

    def core_state(self) -> dict[str, Any]:
        if self.options["storage"]:  # the study is in the storage
            return {}
        return {"study": pickle.dumps(self.study)}  # an in-memory study pickles with its storage

    def set_core_state(self, state: dict[str, Any]) -> None:
        import optuna  # deferred (see the module's imports)

        self.live_trials = {}
        if "study" in state:
            self.study = pickle.loads(state["study"])
            return
        self.study = optuna.load_study(study_name=self._study_name(), storage=open_storage(self.options["storage"]),
                                       sampler=idle_sampler())
        self._fail_orphans()

    def _fail_orphans(self) -> None:
        """Trials the storage holds as running that no restored proposal will finish (asked after the
        snapshot that was restored) are marked failed, so that the study does not wait on them."""
        import optuna  # deferred (see the module's imports)

        waiting = [proposal for proposal, _ in self.pending.values()]
        waiting += [proposal for proposals in self.waiting.values() for proposal in proposals]
        alive = {proposal.token for proposal in waiting}
        for trial in self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            if trial.number not in alive:
                with self.sampling():
                    self.study.tell(trial.number, state=optuna.trial.TrialState.FAIL)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["live_trials"] = {}  # live Optuna trial handles: only for the user attributes of the next tell
        return state


def _tpe(searcher: OptunaSearcher, seed: int) -> optuna.samplers.BaseSampler:
    import optuna  # deferred (see the module's imports)

    return optuna.samplers.TPESampler(n_startup_trials=searcher.options["startup_trials"], seed=seed)


def _nsga2(searcher: OptunaSearcher, seed: int) -> optuna.samplers.BaseSampler:
    import optuna  # deferred (see the module's imports)

    population = searcher.options["population"] or min(50, max(4, searcher.max_trials // 4))
    return optuna.samplers.NSGAIISampler(population_size=population, seed=seed)


SAMPLERS: dict[str, Callable[[OptunaSearcher, int], optuna.samplers.BaseSampler]] = {"tpe": _tpe, "nsga2": _nsga2}


def idle_sampler() -> optuna.samplers.BaseSampler:
    """The sampler a study holds between steps (never asked to sample; plain data, so the study pickles)."""
    import optuna  # deferred (see the module's imports)

    return optuna.samplers.RandomSampler(seed=0)


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """An Optuna storage from its URL (sqlite:///file.db, postgresql://..., mysql://...)."""
    import optuna  # deferred (see the module's imports)

    try:
        return optuna.storages.RDBStorage(url)
    except Exception as error:  # noqa: BLE001 - SQLAlchemy's many errors: one line for the user
        raise StrategyError(f"optuna storage {url!r}: {error}") from None
