"""`make mutation` itself is too slow for the suite (minutes per module); what can rot without notice is checked
here: every module it names exists, so does every test file it runs, and an unknown module is refused."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

from conftest import REPO

_spec = importlib.util.spec_from_file_location("mutation_run", REPO / "mutation" / "run.py")
mutation_run = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mutation_run)


def test_every_module_and_test_file_named_exists():
    for module, tests in mutation_run.MODULES.items():
        assert (REPO / "metaclip_spark" / f"{module}.py").is_file(), module
        for test in [*tests, *mutation_run.PURE_TESTS]:
            assert (REPO / test).is_file(), (module, test)
    for test in mutation_run.SLOW_TESTS:
        path, name = test.split("::")
        assert f"def {name}(" in (REPO / path).read_text(), test


def test_the_scratch_copy_mutates_one_module_and_skips_spark(tmp_path, monkeypatch):
    monkeypatch.setattr(mutation_run, "WORK", tmp_path)
    work = mutation_run.prepare("root/records", ["tests/test_records.py"])
    config = (work / "setup.cfg").read_text()
    assert "only_mutate = metaclip_spark/root/records.py" in config and "\n    tests/test_records.py" in config
    assert "--deselect" in config and "[tool:pytest]" in config
    assert (work / "tests" / "conftest.py").read_text().endswith(mutation_run.NO_SPARK)


def test_an_unknown_module_is_refused():
    run = subprocess.run([sys.executable, str(REPO / "mutation" / "run.py"), "pipeline"], capture_output=True,
                         text=True)
    assert run.returncode == 2 and "not a pure module here: pipeline" in run.stderr
