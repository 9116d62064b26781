#!/usr/bin/env bash
# Mutation testing of accelsim with mutmut 3, one module at a time, and a score table per module.
#
#   tools/mutation.sh [MODULE.py ...]        default: accelsim/systolic.py accelsim/memory.py
#
# Each module runs in its own scratch copy of the working tree (tracked and untracked, not ignored, files), whose
# [tool.mutmut] only_mutate is rewritten to that one module; the rest of the configuration ([tool.mutmut] in
# pyproject.toml: the fast test selection, the fixed Hypothesis seed) is used as is. Nothing is written to the
# checkout itself. Environment:
#   MUTATION_TESTS="tests/a.py tests/b.py"  replace the test selection (mutmut still runs, per mutant, only the
#                                           selected tests that call the mutated function)
#   MUTATION_JOBS=2                         mutmut --max-children
#   MUTATION_TIMEOUT=1800                   seconds allowed per module before the run is stopped
#   MUTATION_WORKDIR=DIR                    keep the scratch copies there (default: a temporary folder, removed)
#   MUTATION_SHOW=1                         also print the diff of every survivor
#   MUTATION_FIRST="tests/a.py"             run these tests first for each mutant (mutmut gives pytest a mutant's
#                                           tests in no useful order and stops at the first failure: a cheap,
#                                           broad file first lets most mutants die in a second)
# Exit status: 0 when every module ran, 1 when one failed or timed out.
set -euo pipefail

ROOT=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
cd "$ROOT"
if [[ $# -gt 0 ]]; then MODULES=("$@"); else MODULES=(accelsim/systolic.py accelsim/memory.py); fi
JOBS=${MUTATION_JOBS:-2}
LIMIT=${MUTATION_TIMEOUT:-1800}
SHOW=${MUTATION_SHOW:-0}
if [[ -n ${MUTATION_WORKDIR:-} ]]; then
    WORK=$(mkdir -p "$MUTATION_WORKDIR" && cd "$MUTATION_WORKDIR" && pwd)
else
    WORK=$(mktemp -d)
    trap 'rm -rf "$WORK"' EXIT
fi
for module in "${MODULES[@]}"; do
    [[ -f $module && $module == *.py ]] || { echo "no such module: $module" >&2; exit 2; }
done

ROWS=()
status=0
for module in "${MODULES[@]}"; do
    name=$(echo "${module%.py}" | tr / .)
    dir="$WORK/$name"
    rm -rf "$dir" && mkdir -p "$dir"
    git ls-files -z -co --exclude-standard | tar --null -T - -cf - | tar -xf - -C "$dir"
    python3 - "$dir/pyproject.toml" "$module" "${MUTATION_TESTS:-}" <<'EOF'
import json, re, sys
path, module, tests = sys.argv[1:]
text = open(path).read()
start = text.index("[tool.mutmut]")
end = text.find("\n[", start + 1)
end = len(text) if end < 0 else end
section = text[start:end]
section = re.sub(r"(?m)^only_mutate = \[.*?\]", "only_mutate = " + json.dumps([module]), section, flags=re.S)
if tests.split():
    section = re.sub(r"(?m)^pytest_add_cli_args_test_selection = \[.*?\]",
                     "pytest_add_cli_args_test_selection = " + json.dumps(tests.split()), section, flags=re.S)
open(path, "w").write(text[:start] + section + text[end:])
EOF
    if [[ -n ${MUTATION_FIRST:-} ]]; then
        cat >>"$dir/tests/conftest.py" <<EOF


def pytest_collection_modifyitems(items):  # added by tools/mutation.sh (MUTATION_FIRST)
    first = tuple("${MUTATION_FIRST}".split())
    items.sort(key=lambda item: not item.nodeid.startswith(first))
EOF
    fi
    echo "== $module: mutmut run --max-children $JOBS (limit ${LIMIT}s) in $dir" >&2
    t0=$(date +%s)
    rc=0
    (cd "$dir" && timeout "$LIMIT" mutmut run --max-children "$JOBS" >"$dir/mutmut.log" 2>&1) || rc=$?
    seconds=$(($(date +%s) - t0))
    if [[ $rc -ne 0 ]]; then
        echo "   mutmut exited with $rc after ${seconds}s (124: stopped at the limit); last lines of $dir/mutmut.log:" >&2
        tail -c 1500 "$dir/mutmut.log" | tr '\r' '\n' | tail -n 8 >&2
        status=1
    fi
    ROWS+=("$(python3 - "$dir/mutants/$module.meta" "$module" "$seconds" "$rc" <<'EOF'
import json, os, sys
from collections import Counter
from mutmut.stats import status_by_exit_code
meta, module, seconds, rc = sys.argv[1:]
codes = json.load(open(meta))["exit_code_by_key"] if os.path.exists(meta) else {}
n = Counter(status_by_exit_code[c] for c in codes.values())
total = len(codes)
detected = n["killed"] + n["timeout"] + n["segfault"] + n["caught by type check"]
score = f"{100 * detected / total:.1f}%" if total else "-"
other = total - detected - n["survived"] - n["no tests"]
note = "" if rc == "0" else f"  (mutmut exit {rc})"
print(f"{module:28s} {total:7d} {n['killed']:7d} {n['timeout']:8d} {n['survived']:9d} {n['no tests']:9d} "
      f"{other:6d} {score:>7s} {seconds:>7s}s{note}")
EOF
)")
    survivors=$(python3 - "$dir/mutants/$module.meta" <<'EOF'
import json, os, sys
from mutmut.stats import status_by_exit_code
meta = sys.argv[1]
codes = json.load(open(meta))["exit_code_by_key"] if os.path.exists(meta) else {}
print(" ".join(k for k, c in codes.items() if status_by_exit_code[c] in ("survived", "no tests")))
EOF
)
    if [[ -n $survivors ]]; then
        echo "   survivors of $module:" >&2
        for m in $survivors; do
            if [[ $SHOW == 1 ]]; then
                echo "   -- $m" >&2
                (cd "$dir" && mutmut show "$m" 2>/dev/null | grep -E '^[-+][^-+]' | sed 's/^/      /') >&2 || true
            else
                echo "      $m" >&2
            fi
        done
    fi
done

echo
printf '%-28s %7s %7s %8s %9s %9s %6s %7s %8s\n' module mutants killed timeout survived "no tests" other score time
for row in "${ROWS[@]}"; do echo "$row"; done
echo "score = (killed + timeout) / mutants; a timeout is a mutant that made the tests hang, so they did notice it."
exit $status
