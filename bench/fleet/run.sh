#!/usr/bin/env bash
# Fleet benchmark (bench/fleet/fleet.py): playbooks/deploy.yml (AllAtOnce) to fleets of SSH hosts as a
# non-root user with become, against a hand-written 6-task playbook and plain ssh + tar on the same
# hosts, every method at every size in one run. BENCH_FLEET_HOSTS lists the fleet sizes (10,20: 20
# containers started once, the 10-host fleet is the first 10), BENCH_FLEET_RUNS the runs per method and
# size (2), BENCH_FLEET_FORKS Ansible's forks for both Ansible methods (the largest size).
# Writes its section of docs/benchmarks.md; removes its containers at the end, also on failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -d .cache/collections/ansible_collections/appspec/deploy ] || scripts/bootstrap.sh
exec .venv/bin/python bench/fleet/fleet.py "$@"
