#!/usr/bin/env bash
# Mutation testing of the safety-critical modules with mutmut 3 (NOT part of CI).
#
#   tools/mutation.sh                       # the scope of [tool.mutmut] in pyproject.toml
#   tools/mutation.sh "planners/safety/guard.py imle_mpc/core/actions.py" \
#                     "tests/planners/safety tests/core"   # a narrower scope: files, tests
#
# Runs in a scratch copy of the tracked files (mutmut writes mutants/ next to the
# sources), then writes killed / survived / total and the survival rate, with the
# surviving mutants' names, to bench/results/mutation.json. Environment: PYTHON (the
# interpreter whose mutmut to use, default .venv/bin/python or python3), MUTMUT_CHILDREN
# (parallel mutants, default 1), MUTMUT_TIMEOUT (seconds for the whole run, default 3600).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-$([ -x "$repo/.venv/bin/python" ] && echo "$repo/.venv/bin/python" || echo python3)}"
files="${1:-}"
tests="${2:-}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$repo" && git ls-files -z | xargs -0 cp --parents -t "$work")
cd "$work"
if [ -n "$files" ]; then  # narrow the scope in the scratch copy's pyproject only
    "$python" - "$files" "$tests" <<'PY'
import re, sys
from pathlib import Path
files, tests = sys.argv[1].split(), sys.argv[2].split()
path = Path("pyproject.toml")
text = path.read_text()
def setting(name, values):
    global text
    pattern = re.compile(rf"^{name} = \[.*?\]\n", re.S | re.M)
    text = pattern.sub(f"{name} = {values!r}\n".replace("'", '"'), text, count=1)
setting("only_mutate", files)
if tests:
    setting("pytest_add_cli_args_test_selection", tests)
path.write_text(text)
PY
fi
export OMP_NUM_THREADS=1  # (NUMBA_NUM_THREADS=1 would fail the thread-count tests)
# mutmut forks a child per mutant from a process that has run Numba parallel kernels;
# GNU OpenMP aborts a forked child (SIGABRT, which mutmut counts as "suspicious"), the
# workqueue layer does not.
export NUMBA_THREADING_LAYER="${NUMBA_THREADING_LAYER:-workqueue}"
status=0
timeout "${MUTMUT_TIMEOUT:-3600}" "$python" -m mutmut run --max-children "${MUTMUT_CHILDREN:-1}" \
    > mutmut.log 2>&1 || status=$?
"$python" -m mutmut export-cicd-stats >> mutmut.log 2>&1 || true
"$python" -m mutmut results > survivors.txt 2>> mutmut.log || true
mkdir -p "$repo/bench/results"
"$python" - "$repo/bench/results/mutation.json" "$status" <<'PY'
import json, re, sys, tomllib
from datetime import date
from pathlib import Path
stats_file = Path("mutants/mutmut-cicd-stats.json")
stats = json.loads(stats_file.read_text()) if stats_file.exists() else {}
config = tomllib.loads(Path("pyproject.toml").read_text())["tool"]["mutmut"]
survivors = [
    line.split(":")[0].strip() for line in Path("survivors.txt").read_text().splitlines()
    if re.search(r":\s*survived", line)
]
killed, survived = stats.get("killed", 0), stats.get("survived", 0)
judged = killed + survived
summary = {
    "date": date.today().isoformat(),
    "tool": "mutmut 3",
    "modules": config["only_mutate"],
    "tests": config["pytest_add_cli_args_test_selection"],
    "exit_status": int(sys.argv[2]),  # 124: the time limit ended the run (partial figures)
    **stats,
    "survival_rate": survived / judged if judged else None,
    "survivors": survivors,
}
Path(sys.argv[1]).write_text(json.dumps(summary, indent=2) + "\n")
print(json.dumps({k: v for k, v in summary.items() if k != "survivors"}, indent=2))
PY
tail -n 40 mutmut.log > "$repo/bench/results/mutation.log.tail" 2>/dev/null || true
