"""Plug-ins: registry entries that come from other installed packages through Python entry points.

Every registry of an extension point has an entry-point group (`GROUPS`); a package that declares

    [project.entry-points."nas.strategies"]
    mystrat = "my_package.strategies:MyStrategy"

adds strategy ``mystrat`` without editing `nas`. A registry looks its group up lazily, once: on the
first lookup of a name it does not know, or when it lists its names (listing reads the installed
packages' metadata only; a plug-in's module is imported when its name is first used). The object an
entry point names becomes the registry's entry (see each registry for what it must be); an entry
point may also name a module that registers its entries itself when imported (e.g. with `@op`).

`Origin` says where an entry came from (distribution, version, entry point); a run records the
origins of the plug-ins it used (`origins`), and `check_installed` says which of them are missing
when the run is resumed in another environment.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from importlib import metadata
from typing import Any

from nas.errors import NasError

GROUPS = {  # registry -> entry-point group
    "strategies": "nas.strategies",
    "spaces": "nas.spaces",  # search-space kinds (the `kind:` of a space file)
    "ops": "nas.ops",
    "templates": "nas.templates",  # cell templates
    "datasets": "nas.datasets",
    "proxies": "nas.proxies",  # zero-cost proxies (nas.evaluate.registry)
}


class PluginError(NasError):
    """A plug-in cannot be loaded, or a run needs one that is not installed."""


@dataclass(frozen=True)
class Origin:
    """Where a registry entry came from: an entry point of an installed distribution."""

    group: str
    name: str
    value: str  # "module:attribute" (or "module")
    distribution: str | None
    version: str | None

    def describe(self) -> str:
        source = f"{self.distribution} {self.version}" if self.distribution else "an unknown distribution"
        return f"entry point {self.name} = {self.value} in group {self.group} (from {source})"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_dict(spec: Mapping[str, Any]) -> "Origin":
        return Origin(str(spec["group"]), str(spec["name"]), str(spec["value"]), spec.get("distribution"),
                      spec.get("version"))


def entry_points(group: str) -> dict[str, metadata.EntryPoint]:
    """The installed entry points of `group` by name (the first one found wins for a duplicated name)."""
    found: dict[str, metadata.EntryPoint] = {}
    for point in metadata.entry_points(group=group):
        found.setdefault(point.name, point)
    return found


def origin_of(point: metadata.EntryPoint) -> Origin:
    dist = getattr(point, "dist", None)
    return Origin(point.group, point.name, point.value, dist.name if dist is not None else None,
                  dist.version if dist is not None else None)


def load(point: metadata.EntryPoint, kind: str) -> Any:
    """Import what `point` names; any failure becomes one `PluginError` line naming the entry point."""
    try:
        return point.load()
    except Exception as error:  # a plug-in's import may fail in any way: say which one, in one line
        message = " ".join(str(error).split()) or type(error).__name__
        raise PluginError(f"{kind} plug-in {point.name!r} failed to load ({origin_of(point).describe()}): "
                          f"{type(error).__name__}: {message}") from None


def origins(records: Iterable[Origin | None]) -> list[dict[str, Any]]:
    """The distinct origins among `records` (None: a built-in or a Python-registered entry), as dicts."""
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for origin in records:
        if origin is not None:
            seen.setdefault((origin.group, origin.name), origin.to_dict())
    return list(seen.values())


def check_installed(recorded: Iterable[Mapping[str, Any]], where: str) -> None:
    """Raise one clear line if a plug-in recorded in `where` (e.g. a run's search.json) is not installed."""
    for spec in recorded:
        try:
            origin = Origin.from_dict(spec)
        except (KeyError, TypeError):
            raise PluginError(f"{where}: malformed plug-in record {spec!r}") from None
        if origin.name not in entry_points(origin.group):
            raise PluginError(f"{where} needs the plug-in {origin.describe()}, which is not installed here; "
                              f"install {origin.distribution or 'the package that provides it'} and try again")
