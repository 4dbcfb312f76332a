"""The registry's built-in modules: loaded on first use, and loaded again after an import that failed."""
import sys

import pytest

from nas import registry


def test_a_failed_builtin_import_is_retried_on_the_next_lookup(tmp_path, monkeypatch):
    table = registry.Registry("widget", builtins=("nas_test_widgets_a", "nas_test_widgets_b"))
    monkeypatch.setattr(registry, "_REGISTRIES", [table])  # keep the test's registry out of the package's list
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    monkeypatch.setattr(sys, "modules", dict(sys.modules))  # the test's modules are forgotten afterwards
    (tmp_path / "nas_test_widgets_a.py").write_text(
        "import tests_registry_target as t\nt.REG.add('a', 1)\n")
    (tmp_path / "nas_test_widgets_b.py").write_text("raise RuntimeError('b is broken')\n")
    target = type(sys)("tests_registry_target")
    target.REG = table
    sys.modules["tests_registry_target"] = target

    with pytest.raises(RuntimeError, match="b is broken"):
        table.names()
    (tmp_path / "nas_test_widgets_b.py").write_text("import tests_registry_target as t\nt.REG.add('b', 2)\n")
    assert table.names() == ["a", "b"]  # b's import ran again; a's entry was kept, not registered twice
    assert table.get("b") == 2
