"""Random search (a strong baseline, Li & Talwalkar 2019): every active choice uniformly at random."""
from __future__ import annotations

from nas.search.strategies.base import Proposal, SpaceSearcher
from nas.search.strategies import strategy


@strategy
class RandomSearcher(SpaceSearcher):
    name = "random"

    def ask(self) -> Proposal:
        return Proposal(self.space.sample(self.rng))

    def tell(self, proposal: Proposal, outcome: dict[str, float] | None) -> None:
        pass  # random search learns nothing; the base records outcomes for dedupe
