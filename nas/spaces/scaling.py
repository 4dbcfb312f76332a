"""The place `nas.spaces.scaling_space` had before it was renamed: searches saved then pickled their space's
class by this path, and `nas search --resume` (Ray Tune's restore) looks it up here."""
from nas.spaces.scaling_space import ScalingSpace  # noqa: F401
