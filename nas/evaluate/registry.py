"""The registry of zero-cost proxies: name -> `Proxy` (a scoring function and what it needs).

    @proxy("synflow", uses_data=False)
    def synflow(candidate: Candidate) -> float: ...

A proxy scores one untrained candidate (`nas.evaluate.proxies.Candidate`: the genome, a freshly
initialised network built from it, one minibatch) with a float, larger meaning "predicted better".
Registering a name twice is an error; other packages add proxies through the entry-point group
``nas.proxies`` (an entry point naming a function decorated with `@proxy`, or the module that holds it).
Kept free of torch, so that the command line can list the names at once.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nas.plugins import GROUPS
from nas.registry import Registry


@dataclass(frozen=True)
class Proxy:
    """A registered proxy: `score(candidate) -> float`, its paper (one line) and whether it reads the
    minibatch's images and labels (`uses_data`; False for params, FLOPs and synflow)."""

    name: str
    score: Callable[[Any], float]
    paper: str = ""
    uses_data: bool = True


def _proxy_entry(name: str, entry: Any) -> Proxy:
    if isinstance(entry, Proxy):
        return entry
    if callable(entry):
        return Proxy(name, entry, getattr(entry, "__doc__", "") or "")
    raise TypeError(f"a proxy must be a function candidate -> float (or a nas.evaluate.registry.Proxy), got {entry!r}")


PROXIES: Registry[Proxy] = Registry("proxy", GROUPS["proxies"], _proxy_entry)


def proxy(name: str, *, paper: str = "", uses_data: bool = True) -> Callable[[Callable], Callable]:
    """Register the decorated function `candidate -> float` as the proxy `name` (a duplicate is an error)."""
    return PROXIES.decorator(name, lambda function: Proxy(name, function, paper, uses_data))


def builtin_names() -> list[str]:
    """The proxies of this package, imported (plug-ins' names come from `PROXIES.names()`)."""
    import nas.evaluate.proxies  # noqa: F401 - registers the built-in proxies; deferred: torch, and a cycle

    return PROXIES.names()


def get_proxy(name: str) -> Proxy:
    import nas.evaluate.proxies  # noqa: F401 - registers the built-in proxies; deferred: torch, and a cycle

    return PROXIES.get(name)
