#!/usr/bin/env bash
# Run the Molecule scenarios of the collection (see docs/testing.md).
#
#   scripts/molecule.sh                      every scenario under extensions/molecule/ but the long ones
#   scripts/molecule.sh faults               a long one (molecule.yml line `# appspec-test: long`)
#   scripts/molecule.sh appspec_info rolling  only those
#   MOLECULE_COMMAND=converge scripts/molecule.sh appspec_info   another molecule command
#
# Molecule 26 finds scenarios under extensions/molecule/ by itself when it runs from the root of a
# collection (a directory with galaxy.yml and no molecule/ directory), so this runs from the
# repository root with `-s NAME`. The test host image is built first (a no-op when up to date).
# Each scenario's output goes to the terminal and to .cache/molecule/<scenario>.log; the script
# ends with a time summary and fails if any scenario failed.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
root=$PWD
export PATH="$root/.venv/bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="$root/.cache/collections"
# The scenarios' deployments go to a revision history of their own (a scenario may set its own in molecule.yml).
export APPSPEC_DEPLOY_HISTORY_DIR=${APPSPEC_DEPLOY_HISTORY_DIR:-$root/.cache/test-history}
export NO_COLOR=${NO_COLOR:-1}
command=${MOLECULE_COMMAND:-test}

scripts/bootstrap.sh --hosts >/dev/null || { echo "molecule.sh: bootstrap failed" >&2; exit 1; }
started=$SECONDS
scripts/test-hosts-image.sh >/dev/null || { echo "molecule.sh: test host image failed" >&2; exit 1; }
image_seconds=$((SECONDS - started))

# A scenario whose molecule.yml has the line `# appspec-test: long` is left out of the run with no names (the
# README's test command must stay under about an hour); name it to run it, or set APPSPEC_MOLECULE_ALL=1.
if [ $# -gt 0 ]; then
    scenarios=("$@")
else
    mapfile -t scenarios < <(
        for file in $(find extensions/molecule -mindepth 2 -name molecule.yml | LC_ALL=C sort); do
            if [ "${APPSPEC_MOLECULE_ALL:-0}" = 1 ] || ! grep -qx '# appspec-test: long' "$file"; then
                dirname "$file" | sed 's|^extensions/molecule/||'
            else
                echo "molecule.sh: leaving out $(dirname "$file") (a long scenario: name it to run it)" >&2
            fi
        done
    )
fi
[ ${#scenarios[@]} -gt 0 ] || { echo "molecule.sh: no scenarios found" >&2; exit 1; }

# Molecule 26 looks for a `default` scenario before every run (it would hold shared state) and,
# when there is none, logs "CRITICAL '<glob>' glob failed.  Exiting." and carries on: neither -s,
# MOLECULE_GLOB nor the working directory avoids that look-up. This collection has no default
# scenario, so that one exact line is noise and is dropped; a scenario asked for that does not exist
# is reported MISSING below before molecule runs, and every other line (and molecule's rc) is kept.
noise=()
if [ ! -e extensions/molecule/default/molecule.yml ]; then
    noise=(-e "CRITICAL 'extensions/molecule/default/molecule.yml' glob failed.  Exiting.")
fi
# Keeps every line but the noise above, as molecule writes it; never fails (no line left is fine).
filter() { if [ ${#noise[@]} -gt 0 ]; then grep --line-buffered -v -x -F "${noise[@]}" || true; else cat; fi; }

logs=$root/.cache/molecule
mkdir -p "$logs"
summary=() failed=0
for scenario in "${scenarios[@]}"; do
    if [ ! -f "extensions/molecule/$scenario/molecule.yml" ]; then
        summary+=("$(printf '%-20s %6s  %s' "$scenario" "-" "MISSING")")
        failed=$((failed + 1))
        continue
    fi
    echo "=== molecule $command -s $scenario"
    log=$logs/${scenario//\//_}.log
    t0=$SECONDS
    molecule "$command" -s "$scenario" 2>&1 | filter | tee "$log"
    rc=${PIPESTATUS[0]}
    elapsed=$((SECONDS - t0))
    if [ "$rc" -eq 0 ]; then
        status=passed
    else
        status="FAILED (rc $rc, log $log)"
        failed=$((failed + 1))
    fi
    summary+=("$(printf '%-20s %5ss  %s' "$scenario" "$elapsed" "$status")")
done

echo
echo "=== molecule summary (test host image: ${image_seconds}s)"
printf '%s\n' "${summary[@]}"
echo "total: $((SECONDS - started))s, ${#scenarios[@]} scenarios, $failed failed"
[ "$failed" -eq 0 ]
