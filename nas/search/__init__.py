"""Architecture search: strategies as plain ask/tell objects (`nas.search.strategies`), the search's
configuration, run loop (`nas.search.run.run_search`, also `nas.run_search`) and run-folder records."""
