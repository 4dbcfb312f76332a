"""Optuna's samplers through Ray Tune's `OptunaSearch`: TPE, or NSGA-II for several objectives.

The space reaches Optuna as a define-by-run function that walks the choices in order and asks
`trial.suggest_categorical` for each active one, so conditional choices are only sampled when active.
Options whose values are not plain scalars (e.g. lists) are suggested by index.

Options: `sampler` ("tpe" or "nsga2"), `objectives` (metric names; default: the searcher's metric;
two or more need nsga2, as Optuna's default sampler is TPE), `directions` ("max"/"min" per objective;
default: `mode` for the metric, min for params/flops/epoch_time, else max), `startup_trials` (TPE's
random start, default 10) and `population` (NSGA-II's population, default clamp(max_trials // 4, 4, 50);
Optuna's own default is 50).

Storage (`storage`, an Optuna RDB URL such as ``sqlite:///study.db``; `study_name`, which `nas search
--storage` sets to the run folder's name): the study lives in that database, where optuna-dashboard
and `optuna.load_study` find it, instead of in memory. A restored searcher (`--resume`) loads the
study from the storage; a trial the storage has already finished (it ended after the searcher's last
snapshot and Tune runs it again) is not told twice, and trials the storage holds as running that no
restored proposal waits for (asked after the snapshot) are marked failed.
"""
from __future__ import annotations

import pickle
from typing import Any

import optuna
from ray.tune.search.optuna import OptunaSearch

from nas.search.strategies.base import MINIMIZED, Proposal, SpaceSearcher, StrategyError
from nas.spaces.base import Choice, SearchSpace

SCALARS = (str, int, float, bool, type(None))


def _by_index(choice: Choice) -> bool:
    return not all(isinstance(option, SCALARS) for option in choice.options)


class DefineByRun:
    """Walks a space's choices for an Optuna trial (picklable, so the study's searcher can be saved)."""

    def __init__(self, space: SearchSpace):
        self.space = space

    def __call__(self, trial: Any) -> None:
        values: dict[str, Any] = {}
        for choice in self.space.choices:
            if not choice.is_active(values):
                continue
            if _by_index(choice):
                values[choice.name] = choice.options[trial.suggest_categorical(choice.name, list(range(len(choice.options))))]
            else:
                values[choice.name] = trial.suggest_categorical(choice.name, list(choice.options))
        return None


class OptunaSearcher(SpaceSearcher):
    name = "optuna"
    OPTIONS = {"sampler": "tpe", "objectives": None, "directions": None, "startup_trials": 10, "population": None,
               "storage": None, "study_name": None}
    OPTION_HELP = {
        "sampler": ("str", "tpe or nsga2 (several objectives need nsga2)"),
        "objectives": ("list", "metrics to optimise, e.g. [val_accuracy, params]; none: val_accuracy"),
        "directions": ("list", "max or min per objective; none: min for params/flops/epoch_time, else max"),
        "startup_trials": ("int", "TPE: random trials before the model is used"),
        "population": ("int", "NSGA-II population; none: clamp(trials // 4, 4, 50)"),
        "storage": ("str", "an Optuna storage URL (e.g. sqlite:///study.db) that keeps the study "
                           "(--storage); none: in memory"),
        "study_name": ("str", "the study's name in the storage; none: the run folder's name"),
    }

    def setup(self) -> None:
        o = self.options
        self.objective_names = list(o["objectives"] or [self.metric])
        directions = o["directions"] or [self._default_direction(name) for name in self.objective_names]
        if len(directions) != len(self.objective_names) or any(d not in ("min", "max") for d in directions):
            raise StrategyError(f"directions must be 'min' or 'max', one per objective {self.objective_names}, got {directions}")
        self.directions = list(directions)
        samplers = {"tpe": self._tpe, "nsga2": self._nsga2}
        if o["sampler"] not in samplers:
            raise StrategyError(f"unknown Optuna sampler {o['sampler']!r} (known: {', '.join(samplers)})")
        if len(self.objective_names) > 1 and o["sampler"] != "nsga2":
            raise StrategyError("several objectives need sampler 'nsga2'")
        single = len(self.objective_names) == 1
        self.inner = OptunaSearch(
            space=DefineByRun(self.space),
            metric=self.objective_names[0] if single else self.objective_names,
            mode=self.directions[0] if single else self.directions,
            sampler=samplers[o["sampler"]](),
            **self._storage_arguments(),
        )
        self.asked = 0

    def _storage_arguments(self) -> dict[str, Any]:
        if not self.options["storage"]:
            return {}
        return {"storage": open_storage(self.options["storage"]), "study_name": self.options["study_name"] or "nas"}

    def _default_direction(self, name: str) -> str:
        if name == self.metric:
            return self.mode
        return "min" if name in MINIMIZED else "max"

    def _tpe(self) -> optuna.samplers.BaseSampler:
        return optuna.samplers.TPESampler(n_startup_trials=self.options["startup_trials"], seed=self.seed)

    def _nsga2(self) -> optuna.samplers.BaseSampler:
        population = self.options["population"] or min(50, max(4, self.max_trials // 4))
        return optuna.samplers.NSGAIISampler(population_size=population, seed=self.seed)

    def objectives(self) -> list[str]:
        return self.objective_names

    def ask(self) -> Proposal:
        token = f"ask-{self.asked}"
        self.asked += 1
        params = self.inner.suggest(token)
        sample = {}
        for choice in self.space.choices:
            if choice.name in params:
                value = params[choice.name]
                sample[choice.name] = choice.options[value] if _by_index(choice) else value
        return Proposal(sample, token=token)

    def tell(self, proposal: Proposal, outcome: dict[str, float] | None) -> None:
        if self._finished_in_storage(proposal.token):
            self.inner._completed_trials.add(proposal.token)  # already counted before an interruption
            return
        self.inner.on_trial_complete(proposal.token, result=outcome, error=outcome is None)

    def _finished_in_storage(self, token: str) -> bool:
        trial = self.inner._ot_trials.get(token)
        if not self.options["storage"] or trial is None:
            return False
        return self.study.get_trials(deepcopy=False)[trial.number].state.is_finished()

    @property
    def study(self) -> optuna.Study:
        """The Optuna study (OptunaSearch keeps it in `_ot_study`; it offers no public accessor)."""
        return self.inner._ot_study

    def core_state(self) -> dict[str, Any]:
        return {"inner": pickle.dumps(self.inner), "asked": self.asked}

    def set_core_state(self, state: dict[str, Any]) -> None:
        self.inner = pickle.loads(state["inner"])
        self.asked = state["asked"]
        if self.options["storage"]:
            self._reload_study()

    def _reload_study(self) -> None:
        """The study as the storage holds it now (it may have moved on since the snapshot); trials it
        holds as running that no restored proposal will finish are marked failed."""
        sampler = self.study.sampler
        study = optuna.load_study(study_name=self.inner._study_name, storage=open_storage(self.options["storage"]),
                                  sampler=sampler)
        self.inner._ot_study = study
        self.inner._ot_trials = {token: optuna.Trial(study, trial._trial_id)
                                 for token, trial in self.inner._ot_trials.items()}
        waiting = {proposal.token for proposal, _ in self.pending.values()}
        waiting |= {proposal.token for proposals in self.waiting.values() for proposal in proposals}
        alive = {self.inner._ot_trials[token].number for token in waiting if token in self.inner._ot_trials}
        for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            if trial.number not in alive:
                study.tell(trial.number, state=optuna.trial.TrialState.FAIL)


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """An Optuna storage from its URL (sqlite:///file.db, postgresql://..., mysql://...)."""
    try:
        return optuna.storages.RDBStorage(url)
    except Exception as error:  # noqa: BLE001 - SQLAlchemy's many errors: one line for the user
        raise StrategyError(f"optuna storage {url!r}: {error}") from None
