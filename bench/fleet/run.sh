#!/usr/bin/env bash
# Fleet benchmark (bench/fleet/fleet.py): playbooks/deploy.yml to fleets of SSH hosts as a non-root user
# with become, CodeDeployDefault.AllAtOnce and .OneAtATime, against a hand-written 6-task playbook (serial: 1
# for OneAtATime) and plain ssh + tar (hosts one after the other for OneAtATime) on the same hosts, every
# method at every size in one run. Measures wall time, controller CPU, the targets' CPU (cgroups) and the
# controller's peak memory. BENCH_FLEET_HOSTS lists the fleet sizes (1,5,10,20,40: 40 containers started
# once, a smaller fleet is their first hosts), BENCH_FLEET_STRATEGIES the strategies (AllAtOnce,OneAtATime),
# BENCH_FLEET_RUNS the runs per method, size and strategy (2), BENCH_FLEET_SERIAL_RUNS_LARGEST the runs of
# OneAtATime at the largest size (1), BENCH_FLEET_FORKS Ansible's forks for both Ansible methods (the
# largest size). About 35 minutes on 2 cores.
# Writes its section of docs/benchmarks.md; removes its containers at the end, also on failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -d .cache/collections/ansible_collections/appspec/deploy ] || scripts/bootstrap.sh
exec .venv/bin/python bench/fleet/fleet.py "$@"
