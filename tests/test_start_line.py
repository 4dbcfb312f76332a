"""What a search's start line says it searches: "<strategy> over <space>", or for scaling, which starts
from one genome, "scaling of <genome>"."""
from nas.search.strategies import make_searcher
from nas.spaces import load_space


def test_the_search_start_line_names_what_each_strategy_searches():
    space = load_space("compact", input_channels=1, input_size=28, num_classes=10)
    scaling = make_searcher("scaling", space, seed=0, max_trials=2,
                            options={"base": "resnet20", "grid": [[1.2, 1.1, 1.0]], "phis": 1})
    assert scaling.subject("compact") == "of resnet20"  # not "over compact"
    assert make_searcher("random", space, seed=0, max_trials=2).subject("compact") == "over compact"
