#!/usr/bin/env bash
# Fleet benchmark (bench/fleet/fleet.py): playbooks/deploy.yml (AllAtOnce) to 4 SSH hosts as a
# non-root user with become, against a hand-written 6-task playbook and plain ssh + tar on the same
# hosts. BENCH_FLEET_HOSTS / BENCH_FLEET_RUNS change the host count (4) and runs per method (3).
# Writes its section of docs/benchmarks.md; removes its containers at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -d .cache/collections/ansible_collections/appspec/deploy ] || scripts/bootstrap.sh
exec .venv/bin/python bench/fleet/fleet.py "$@"
