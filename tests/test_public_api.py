"""`nas.__all__`: every name importable from `nas`, and the set documented in docs/python-api.md."""
import re
import subprocess
import sys
from pathlib import Path

import nas

PAGE = Path(__file__).resolve().parents[1] / "docs" / "python-api.md"


def documented() -> set[str]:
    return set(re.findall(r"^\| `(\w+)` \|", PAGE.read_text(), flags=re.M))


def test_all_is_the_documented_set():
    assert set(nas.__all__) == documented()


def test_every_public_name_imports():
    for name in nas.__all__:
        assert getattr(nas, name) is not None, name
        imported = __import__("nas", fromlist=[name])  # what `from nas import <name>` does
        assert getattr(imported, name) is getattr(nas, name)


def test_the_callables_are_functions_and_the_packages_plain():
    import types

    from nas.summary import summary
    from nas.search.run import run_search
    from nas.train.fit import train

    assert nas.fit is train and nas.run_search is run_search and nas.summarize is summary
    for package in (nas.search, nas.train, nas.summary):
        assert type(package) is types.ModuleType and not callable(package)


def test_import_nas_and_the_light_actors_load_neither_torch_nor_ray():
    # the classes of the progress board's and the stop flag's Ray actors (their worker processes import them)
    code = ("import sys, nas; nas.__all__; import nas.engine.light_actors; "
            "print(sorted(m for m in ('torch', 'ray') if m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "[]"
