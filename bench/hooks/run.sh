#!/usr/bin/env bash
# Per-script overhead of the lifecycle_event runner: a hook of 100 trivial scripts, run by
# module_utils/_hooks.run_events, against the same scripts run in a shell loop.
# Usage: bench/hooks/run.sh [repetitions]   (from the repository root; about 10-20 s)
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -d .cache/collections/ansible_collections/appspec/deploy ] || scripts/bootstrap.sh
exec .venv/bin/python bench/hooks/run.py "$@"
