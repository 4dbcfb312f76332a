"""Architecture search: strategies as Ray Tune searchers (`nas.search.strategies`) and the run loop."""
