"""The place `nas.search.strategies.compound_scaling` had before it was renamed: searches saved then pickled
their strategy by this path, and `nas search --resume` (Ray Tune's restore) looks it up here."""
from nas.search.strategies.compound_scaling import ScalingSearcher  # noqa: F401
