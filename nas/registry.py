"""A name -> entry mapping in which every name is registered exactly once.

A registry with an entry-point `group` also finds entries in other installed packages (plug-ins, see
`nas.plugins`): lazily, on the first lookup of a name it does not know or when it lists its names.
A registry with `builtins` imports those modules (whose decorators register the built-in entries) on its
first lookup or listing, so that importing the registry itself stays cheap.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from importlib import metadata
from types import ModuleType
from typing import Any, Generic, TypeVar

from nas.errors import RegistryError
from nas.plugins import PluginError, entry_points, load, origin_of, origins
from nas.suggest import did_you_mean

T = TypeVar("T")
_REGISTRIES: list["Registry"] = []  # every registry, for `loaded_plugins`


class Registry(Generic[T]):
    """Maps names to entries; registering a name twice is an error.

    `group`: the entry-point group whose entry points add entries (None: none). `adapt(name, obj)`
    turns the object an entry point names into an entry (default: the object itself); an entry point
    that names a module must register its entries itself when imported.
    """

    def __init__(self, kind: str, group: str | None = None, adapt: Callable[[str, Any], T] | None = None,
                 builtins: tuple[str, ...] = ()):
        self.kind = kind
        self.builtins = builtins  # modules imported on first use; importing them registers the built-in entries
        self._builtins_loaded = not builtins
        self.group = group
        self.adapt = adapt
        self._entries: dict[str, T] = {}
        self._origins: dict[str, Any] = {}  # name -> nas.plugins.Origin, for entries from entry points
        self._pending: dict[str, metadata.EntryPoint] | None = None  # None: not looked up yet
        _REGISTRIES.append(self)

    def add(self, name: str, entry: T) -> T:
        if name in self._entries:
            raise RegistryError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = entry
        return entry

    def _load_builtins(self) -> None:
        if not self._builtins_loaded:
            self._builtins_loaded = True  # first: the modules' own lookups must not import them again
            try:
                for module in self.builtins:
                    importlib.import_module(module)
            except BaseException:
                # not loaded after all: the next lookup tries again (the modules imported so far stay in
                # sys.modules with their entries; only the one that failed runs again) instead of answering
                # from a registry that silently lacks the rest
                self._builtins_loaded = False
                raise

    # ----- plug-ins -----
    def _scan(self) -> dict[str, metadata.EntryPoint]:
        self._load_builtins()
        if self._pending is None:
            self._pending = {} if self.group is None else {
                name: point for name, point in entry_points(self.group).items() if name not in self._entries}
        return self._pending

    def _resolve(self, name: str) -> bool:
        """Is `name` registered, after loading the plug-in that provides it (if any)?"""
        self._load_builtins()
        if name in self._entries:
            return True
        pending = self._scan()
        if not isinstance(name, str) or name not in pending:
            return False
        point = pending.pop(name)
        loaded = load(point, self.kind)
        if name not in self._entries:  # not registered by the import itself
            if isinstance(loaded, ModuleType):
                raise PluginError(f"{self.kind} plug-in {name!r}: importing {point.value} did not register "
                                  f"{self.kind} {name!r} ({origin_of(point).describe()})")
            try:
                entry = self.adapt(name, loaded) if self.adapt is not None else loaded
            except (TypeError, ValueError) as error:
                raise PluginError(f"{self.kind} plug-in {name!r} ({origin_of(point).describe()}): {error}") from None
            self.add(name, entry)
        self._origins[name] = origin_of(point)
        return True

    def rescan(self) -> None:
        """Look the entry points up again on the next lookup (e.g. after installing a plug-in in a running
        session); entries already loaded stay."""
        self._pending = None

    def origin(self, name: str):
        """Where entry `name` came from (a `nas.plugins.Origin`), or None for a built-in or Python-registered one."""
        return self._origins.get(name)

    # ----- lookups -----
    def get(self, name: str) -> T:
        if not self._resolve(name):
            known = ", ".join(self.names())
            raise RegistryError(f"unknown {self.kind} {name!r} (known: {known})"
                                + did_you_mean(name, self.names())) from None
        return self._entries[name]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._resolve(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def names(self) -> list[str]:
        """Every name, plug-ins' included (found from the installed packages' metadata, not imported)."""
        self._load_builtins()
        return sorted(set(self._entries) | set(self._scan()))

    def decorator(self, name: str, make: Callable[[Callable], T]) -> Callable[[Callable], Callable]:
        """Return a decorator that registers `make(function)` under `name`."""

        def register(function: Callable) -> Callable:
            self.add(name, make(function))
            return function

        return register


def loaded_plugins() -> list[dict[str, Any]]:
    """The origins (as dicts, see `nas.plugins.Origin`) of every plug-in loaded so far, in any registry."""
    return origins(registry._origins.get(name) for registry in _REGISTRIES for name in sorted(registry._origins))
