"""Warm-starting a search with a zero-cost proxy (Abdelfattah et al. 2021, section 5: score many random
candidates with a proxy, seed the evolution population with the best).

`warm_samples` draws `count` distinct random samples of the space (seeded by the search's seed), scores each
with the proxy at initialisation in the driver (no Ray; one minibatch of the recipe's batch size, as a proxy
trial), and returns them best first; `SpaceSearcher.warm_start` then puts them in place of the strategy's
random proposals (evolution's initial population, PNAS's random warm-up before its predictor is fitted).
"""
from __future__ import annotations

import math
import random
import time
from typing import Any

from nas.errors import NasError


def warm_samples(space, data, proxy: str, count: int, seed: int, batch_size: int) -> list[dict[str, Any]]:
    """`count` distinct random samples of `space`, best proxy score first (non-finite scores left out)."""
    from nas.evaluate.proxies import Candidate, score  # deferred: torch (`nas search --help` imports this module)
    from nas.engine.progress import announce  # deferred: Ray (as torch above)

    rng = random.Random(f"warmup:{seed}")
    scored: list[tuple[float, int, dict[str, Any]]] = []
    seen: set[str] = set()
    started = time.perf_counter()
    for draw in range(count * 20):
        if len(seen) >= count:
            break
        sample = space.sample(rng)
        genome = space.realize(sample)
        if genome.fingerprint() in seen:
            continue
        seen.add(genome.fingerprint())
        value = score(proxy, Candidate.of(genome, data, seed=seed, batch_size=batch_size))
        if math.isfinite(value):
            scored.append((value, draw, sample))
        if len(seen) % max(1, count // 5) == 0 or len(seen) == count:
            announce(f"warm-up: {len(seen)}/{count} candidates scored by {proxy} "
                     f"({time.perf_counter() - started:.0f} s)")
    if not scored:
        raise NasError(f"--warmup-proxy {proxy}: no candidate of {count} had a finite score")
    scored.sort(key=lambda item: (-item[0], item[1]))
    return [sample for _, _, sample in scored]
