#!/usr/bin/env bash
# Run every test stage (or the stages named as arguments): unit, target-python, sanity, lint, molecule.
# Sets up what it needs first; prints one closing line "N passed, N failed" over the stages.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
stages=("$@")
[ ${#stages[@]} -gt 0 ] || stages=(unit target-python sanity lint artifact molecule)

scripts/bootstrap.sh --hosts || { echo "bootstrap failed"; echo "0 passed, 1 failed"; exit 1; }
export PATH="$PWD/.venv/bin:$PATH"
# Every deploy.yml run records the deployment in the revision history (docs/pipeline.md): the tests' runs go to a
# history of their own, not to the user's (~/.local/state/appspec.deploy/history).
export APPSPEC_DEPLOY_HISTORY_DIR=${APPSPEC_DEPLOY_HISTORY_DIR:-$PWD/.cache/test-history}

passed=0 failed=0 failures=()
run_stage() {
    local name=$1; shift
    echo "=== stage: $name"
    local started=$SECONDS
    if "$@"; then
        passed=$((passed + 1)); echo "=== stage $name passed in $((SECONDS - started)) s"
    else
        failed=$((failed + 1)); failures+=("$name"); echo "=== stage $name FAILED in $((SECONDS - started)) s"
    fi
}

for stage in "${stages[@]}"; do
    case "$stage" in
        unit) run_stage unit pytest -q tests/unit ;;
        target-python) run_stage target-python scripts/target-python.sh ;;
        sanity) run_stage sanity scripts/sanity.sh ;;
        lint) run_stage lint ansible-lint --profile production ;;
        artifact) run_stage artifact scripts/artifact-test.sh ;;
        molecule) run_stage molecule scripts/molecule.sh ;;
        *) echo "unknown stage $stage"; failed=$((failed + 1)) ;;
    esac
done

[ ${#failures[@]} -eq 0 ] || echo "failed stages: ${failures[*]}"
echo "stages: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
