"""Search spaces: named finite choices whose samples realize genomes (see `nas.spaces.base`)."""
from nas.spaces.base import Choice, SearchSpace, SpaceError
from nas.spaces.loader import KINDS, load_space, space_names

__all__ = ["KINDS", "Choice", "SearchSpace", "SpaceError", "load_space", "space_names"]
