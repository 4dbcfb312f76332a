"""Stage-level (macro) spaces: per stage a cell family (a registered cell template), its width, repeats
and the family's own parameters. `macro.yaml` offers many families; `mobile.yaml` is the MnasNet-like
case of a single family (mbconv) whose kernel, expansion, SE ratio and repeats vary per stage.

File format (``kind: stages``)::

    stem: {out: 16, act: relu, max_size: 32}     # see nas.spaces.layout for the size rules
    stages:                                      # one entry per stage
      - {width: [16, 32], stride: 1}             # lists are choices, scalars are fixed
      - {width: [32, 64], stride: 2, repeats: [1, 2]}
    repeats: [1, 2]                              # default for stages that do not say
    families:                                    # family name -> how it fills a stage
      residual:
        template: basic                          # default: the family's name
        params: {se: [0.0, 0.25]}                # template parameters: options or fixed values
      inception:
        out: false                               # the template decides its output channels
        widths: {c1: 0.25, c3: 0.5}              # parameters set to round(fraction * stage width)
      dense:
        before: transition                       # a stage of this template first takes width and stride
        out: false
        params: {layers: [2, 4], growth: [8, 12]}
    head: [{op: global_avgpool}]

Parameter names are checked against the template's declared parameters (`TemplateSpec.defaults`).
A family parameter with several options is the choice ``stage<k>.<family>.<param>``, active only
when ``stage<k>.family`` is that family (``stage<k>.<param>`` when there is a single family); stage
choices are ``stage<k>.family``, ``stage<k>.width`` and ``stage<k>.repeats`` (k from 1), present
only where there is more than one option.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nas.templates.registry import TEMPLATES
from nas.genome import Genome
from nas.spaces.base import Choice, SearchSpace, SpaceError
from nas.spaces.fields import Fields
from nas.spaces.layout import clip_strides, stem_layers


@dataclass(frozen=True)
class StageSlot:
    width: tuple[Any, ...]
    repeats: tuple[Any, ...]
    stride: int


@dataclass(frozen=True)
class Family:
    """How one family fills a stage: its template, its parameters (options), the parameters that are
    fractions of the stage width, whether the stage gives the template its ``out``, and an optional
    template for a stage inserted before it (taking the width and the stride, e.g. a dense transition)."""

    name: str
    template: str
    params: dict[str, tuple[Any, ...]]
    widths: dict[str, float]
    out: bool
    before: str | None

    @staticmethod
    def from_fields(name: str, spec: Fields) -> "Family":
        spec.check_keys({"template", "params", "widths", "out", "before"})
        template = spec.get("template", str, name)
        if template not in TEMPLATES:
            raise SpaceError(f"{spec.where}: no cell template {template!r} (known: {', '.join(TEMPLATES.names())})")
        declared = set(TEMPLATES.get(template).defaults)
        params = spec.sub("params", {})
        params.check_keys(declared)
        widths = spec.sub("widths", {})
        widths.check_keys(declared - set(params.data))
        fractions = {str(k): widths.get(str(k), (int, float)) for k in widths.data}
        if any(f <= 0 for f in fractions.values()):
            raise SpaceError(f"{widths.where}: fractions of the stage width must be positive")
        before = spec.get("before", str, None)
        if before is not None and before not in TEMPLATES:
            raise SpaceError(f"{spec.where}.before: no cell template {before!r}")
        return Family(name, template, {str(k): params.options(str(k)) for k in params.data}, fractions,
                      spec.get("out", bool, True), before)

    def stages(self, width: int, repeats: int, stride: int, values: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The genome stages of this family for one slot; `values` holds the family parameters' values."""
        params = {**values, **{k: max(1, round(width * f)) for k, f in self.widths.items()}}
        stage: dict[str, Any] = {"cell": self.template, "repeats": repeats}
        if self.out:
            stage["out"] = width
        if params:
            stage["params"] = params
        if self.before is None:
            return [{**stage, "stride": stride}]
        return [{"cell": self.before, "out": width, "stride": stride}, {**stage, "stride": 1}]


class StageSpace(SearchSpace):
    FIELDS = {"kind", "name", "description", "input", "num_classes", "stem", "stages", "repeats", "families", "head"}

    def __init__(self, spec: Fields, *, input_channels: int, input_size: int, num_classes: int):
        spec.check_keys(self.FIELDS)
        stem = spec.sub("stem")
        stem.check_keys({"out", "act", "max_size"})
        self.stem_out = stem.get("out", int)
        self.stem_act = stem.get("act", str, "relu")
        self.stem_max_size = stem.get("max_size", int, 32)
        default_repeats = spec.options("repeats", 1)
        stages = spec.get("stages", list)
        if not stages:
            raise SpaceError(f"{spec.where}.stages: needs at least one stage")
        self.slots = []
        for k, entry in enumerate(stages):
            slot = Fields(entry, f"{spec.where}.stages[{k}]")
            slot.check_keys({"width", "repeats", "stride"})
            self.slots.append(StageSlot(slot.options("width"), slot.options("repeats", list(default_repeats)),
                                        slot.get("stride", int, 1)))
        families = spec.sub("families")
        if not families.data:
            raise SpaceError(f"{families.where}: needs at least one family")
        self.families = {str(name): Family.from_fields(str(name), families.sub(str(name), {}))
                         for name in families.data}
        self.head = spec.get("head", list, [{"op": "global_avgpool"}])
        super().__init__(spec.get("name", str, "stages"), self._choices(), input_channels=input_channels,
                         input_size=input_size, num_classes=num_classes)

    def _param_choice(self, k: int, family: str, param: str) -> str:
        return f"stage{k + 1}.{family}.{param}" if len(self.families) > 1 else f"stage{k + 1}.{param}"

    def _choices(self) -> list[Choice]:
        choices = []
        for k, slot in enumerate(self.slots):
            if len(self.families) > 1:
                choices.append(Choice(f"stage{k + 1}.family", tuple(self.families)))
            if len(slot.width) > 1:
                choices.append(Choice(f"stage{k + 1}.width", slot.width))
            if len(slot.repeats) > 1:
                choices.append(Choice(f"stage{k + 1}.repeats", slot.repeats))
            for family in self.families.values():
                when = {f"stage{k + 1}.family": (family.name,)} if len(self.families) > 1 else {}
                for param, options in family.params.items():
                    if len(options) > 1:
                        choices.append(Choice(self._param_choice(k, family.name, param), options, when))
        return choices

    def stages(self, sample: Mapping[str, Any], k: int, stride: int) -> list[dict[str, Any]]:
        """The genome stages of slot `k` of `sample` (one, or two with a `before` stage), with `stride`."""
        slot = self.slots[k]
        family = self.families[sample.get(f"stage{k + 1}.family", next(iter(self.families)))]
        values = {param: sample.get(self._param_choice(k, family.name, param), options[0])
                  for param, options in family.params.items()}
        return family.stages(sample.get(f"stage{k + 1}.width", slot.width[0]),
                             sample.get(f"stage{k + 1}.repeats", slot.repeats[0]), stride, values)

    def genome_of(self, sample: Mapping[str, Any]) -> Genome:
        stem, size = stem_layers(self.stem_out, self.input_size, self.stem_max_size, self.stem_act)
        strides = clip_strides([slot.stride for slot in self.slots], size)
        return Genome.from_dict({
            "name": self.genome_name(sample),
            "input": {"channels": self.input_channels, "size": self.input_size},
            "num_classes": self.num_classes,
            "stem": stem,
            "stages": [stage for k, stride in enumerate(strides) for stage in self.stages(sample, k, stride)],
            "head": self.head,
        })
