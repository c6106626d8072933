"""`make mutation`: mutation testing of the pure modules with mutmut, one module at a time, outside CI.

For each module, a scratch copy of the project in mutation/work/<module>/ (git-ignored) gets a setup.cfg whose
[mutmut] section mutates that module only and runs the pure test files that cover it; Spark is left out (the
copy's `spark` fixture skips), so a run takes minutes, not the suite's quarter hour. mutmut runs each mutant
against the tests that call the mutated function and records whether one failed (killed) or none did (survived).
The last line printed is `mutation score: K/N killed (P%)` over the modules run; each survivor's diff is written to
mutation/work/<module>/survivors.txt. mutation/README.md lists the survivors found and why each is left.

    python mutation/run.py                 # every module below
    python mutation/run.py matching/substrings extraction/wat    # these only
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / "mutation" / "work"
MUTMUT = Path(sys.executable).with_name("mutmut")

# The pure modules and the test files that cover them without Spark (their Spark tests skip in these runs).
PURE_TESTS = ["tests/test_golden.py", "tests/test_boundaries.py", "tests/test_properties.py"]
MODULES = {
    "matching/substrings": ["tests/test_matching.py", "tests/test_worldwide_rules.py", "tests/test_matching_workers.py"],
    "balancing/draws": ["tests/test_balancing.py", "tests/test_thresholds.py", "tests/test_worldwide_rules.py"],
    "balancing/thresholds": ["tests/test_thresholds.py", "tests/test_balancing.py", "tests/test_plan_table.py"],
    "extraction/gzip_members": ["tests/test_damaged_archives.py"],
    "config": ["tests/test_config.py", "tests/test_user_mistakes.py", "tests/test_config_record.py"],
    "export/online": ["tests/test_online.py"],
    "matching/lang_codes": ["tests/test_worldwide_rules.py"],
    "root/records": ["tests/test_records.py"],
    "extraction/wat": ["tests/test_wat.py", "tests/test_fast_paths.py"],
    "extraction/webpage": ["tests/test_webpage.py", "tests/test_wat.py", "tests/test_fast_paths.py",
                           "tests/test_webpage_edges.py"],
    "ingestion/dedup": ["tests/test_pool_dedup.py"],
}
# Tests too slow to run once per mutant (they stay in `make test`): the fuzz test reads every real archive 60 times;
# the fail-fast test runs `extract` with Spark in a subprocess (the `spark` fixture's skip does not reach it); the
# online test's second interpreter hit its 120 s timeout in mutmut's first pass on a loaded machine, which stops the
# whole module's run (keep_batch against keep, and the fixed draws, are still checked by test_online and test_golden).
SLOW_TESTS = ["tests/test_damaged_archives.py::test_fuzz_damaged_real_archives_never_crash_and_keep_every_undamaged_record",
              "tests/test_user_mistakes.py::test_fail_fast_stops_with_one_line_and_no_spark_traces",
              "tests/test_online.py::test_the_same_subset_for_the_same_epoch_in_any_process_and_batch_split"]
# Functions that need a SparkSession to run at all: not mutated (the Spark tests cover them, in `make test`). The
# copy marks each `def` with mutmut's `# pragma: no mutate block` (its do_not_mutate_patterns skip a line, not a body).
SPARK_ONLY = {"ingestion/dedup": ("first_of_duplicates", "stripped_texts")}
# What the copy's conftest gets: every test asking for a SparkSession skips.
NO_SPARK = '''

@pytest.fixture(scope="session")
def spark():
    pytest.skip("mutation runs leave Spark out (mutation/run.py)")
'''
KILLED = ("killed", "timeout", "caught by type check")
RESULT = re.compile(r"^\s+(\S+): (.+)$")


def pytest_section() -> str:
    """The project's [tool:pytest] section (its markers), for the copy's setup.cfg."""
    text = (REPO / "setup.cfg").read_text()
    start = text.index("[tool:pytest]")
    end = text.find("\n[", start + 1)
    return text[start:end if end >= 0 else len(text)].replace("testpaths = tests\n", "")


def skip_function(path: Path, name: str) -> None:
    """Mark the top-level function `name` of the copy's `path` as not to be mutated (on its signature's last line)."""
    lines = path.read_text().splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.startswith(f"def {name}("))
    end = next(i for i in range(start, len(lines)) if lines[i].rstrip().endswith(":"))
    lines[end] = lines[end].rstrip("\n") + "  # pragma: no mutate block\n"
    path.write_text("".join(lines))


def prepare(module: str, tests: list[str]) -> Path:
    work = WORK / module.replace("/", ".")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(REPO / "metaclip_spark", work / "metaclip_spark", ignore=ignore)
    shutil.copytree(REPO / "conf", work / "conf")
    shutil.copytree(REPO / "examples", work / "examples", ignore=ignore)  # test_online imports the loader example
    shutil.copytree(REPO / "tests", work / "tests", ignore=ignore)
    for function in SPARK_ONLY.get(module, ()):
        skip_function(work / "metaclip_spark" / f"{module}.py", function)
    with open(work / "tests" / "conftest.py", "a") as conftest:
        conftest.write(NO_SPARK)
    selected = [t for t in dict.fromkeys(tests + PURE_TESTS) if (REPO / t).exists()]
    pytest_args = ["-p", "no:cacheprovider", "-m", "not cluster and not roundtrip"]
    pytest_args += [arg for test in SLOW_TESTS for arg in ("--deselect", test)]
    (work / "setup.cfg").write_text("\n".join([
        pytest_section(), "", "[mutmut]",
        "source_paths = metaclip_spark",
        f"only_mutate = metaclip_spark/{module}.py",
        "also_copy =\n    tests\n    conf\n    examples",
        "pytest_add_cli_args =" + "".join(f"\n    {arg}" for arg in pytest_args),
        "pytest_add_cli_args_test_selection =" + "".join(f"\n    {test}" for test in selected), ""]))
    return work


def run(module: str, tests: list[str]) -> dict[str, str]:
    work = prepare(module, tests)
    log = work / "mutmut.log"
    print(f"{module}: mutating {module}.py against {', '.join(tests)} (log: {log.relative_to(REPO)})", flush=True)
    with open(log, "w") as out:
        ran = subprocess.run(["nice", "-n", "15", str(MUTMUT), "run", "--max-children", "1"], cwd=work, stdout=out,
                             stderr=subprocess.STDOUT, check=False)
    if ran.returncode != 0:  # e.g. a test failing on the unmutated code: no mutant was run, nothing to count
        sys.exit(f"{module}: mutmut run failed (exit {ran.returncode}); see {log.relative_to(REPO)}")
    listed = subprocess.run([str(MUTMUT), "results", "--all", "true"], cwd=work, capture_output=True, text=True)
    statuses = {m.group(1): m.group(2) for m in map(RESULT.match, listed.stdout.splitlines()) if m}
    survivors = [name for name, status in statuses.items() if status not in KILLED]
    with open(work / "survivors.txt", "w") as out:
        for name in survivors:
            shown = subprocess.run([str(MUTMUT), "show", name], cwd=work, capture_output=True, text=True).stdout
            out.write(f"{shown}\n")
    killed = len(statuses) - len(survivors)
    print(f"{module}: {killed}/{len(statuses)} killed; survivors in {(work / 'survivors.txt').relative_to(REPO)}",
          flush=True)
    return statuses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help=f"modules to mutate (default: all of {', '.join(MODULES)})")
    modules = parser.parse_args().modules or list(MODULES)
    unknown = [m for m in modules if m not in MODULES]
    if unknown:
        parser.error(f"not a pure module here: {', '.join(unknown)} (choose from {', '.join(MODULES)})")
    killed = total = 0
    for module in modules:
        statuses = run(module, MODULES[module])
        total += len(statuses)
        killed += sum(status in KILLED for status in statuses.values())
    print(f"mutation score: {killed}/{total} killed ({100 * killed / total if total else 0:.1f}%)")


if __name__ == "__main__":
    main()
