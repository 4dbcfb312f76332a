"""The README and docs/: the reference pages are what the registries say today, every link points to a
file of the repository, and nothing refers to files outside it."""
import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def load_generator():
    spec = importlib.util.spec_from_file_location("make_reference", ROOT / "docs" / "make_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_reference_pages_are_what_the_registries_say():
    assert load_generator().stale_pages() == [], "run: .venv/bin/python docs/make_reference.py"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_is_a_file_of_the_repository(page):
    for target in LINK.findall(page.read_text()):
        assert "://" not in target and not target.startswith("mailto:"), f"{page.name}: links outside: {target}"
        path = (page.parent / target.split("#")[0]).resolve()
        assert path.is_relative_to(ROOT) and path.exists(), f"{page.name}: broken link {target}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_nothing_refers_outside_the_repository_or_to_how_it_was_made(page):
    text = page.read_text()
    for words in ("../shared", "REFERENCES.md", "previous stop", "the issue", "this stop"):
        assert words not in text, f"{page.name}: {words!r}"


def test_the_readme_is_a_guide_not_the_reference():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 250


def test_the_plugin_strategy_of_the_docs_runs(tmp_path):
    from nas.search.strategies.base import FINISHED, StrategyError
    from nas.spaces import load_space

    page = (ROOT / "docs" / "plugins.md").read_text()
    code = page.split("# my_plugins/search.py")[1].split("\n", 1)[1].split("```")[0]
    path = tmp_path / "docs_plugin_search.py"
    path.write_text(code)
    spec = importlib.util.spec_from_file_location("docs_plugin_search", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    searcher = module.GreedySearcher(load_space("macro"), seed=0, max_trials=3, options={"explore": 0.5})
    for trial in range(3):
        config = searcher.suggest(f"t{trial}")
        assert isinstance(config, dict) and "genome" in config
        searcher.on_trial_complete(f"t{trial}", {"val_accuracy": 0.5 + trial / 10})
    assert searcher.suggest("t3") == FINISHED and searcher.best[0] == 0.7
    with pytest.raises(StrategyError, match=r"in \[0, 1\]"):
        module.GreedySearcher(load_space("macro"), seed=0, max_trials=3, options={"explore": 2})
