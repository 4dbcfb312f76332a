"""The place `nas.spaces.cell_space` had before it was renamed: searches saved then pickled their space's
classes by this path, and `nas search --resume` (Ray Tune's restore) looks them up here."""
from nas.spaces.cell_space import CellSpace, _Op  # noqa: F401
