#!/usr/bin/env bash
# Zero-downtime benchmark (bench/zero_downtime/zero_downtime.py): requests/s, failed requests and latency
# percentiles under a steady load (extensions/molecule/shared/loadgen.py) during a rolling deploy.yml behind
# haproxy, a release-mode deployment to one host served directly, and that host's `current` switched N times
# by the collection and N times the naive way (rm -rf current; ln -s), in one run of about 5 minutes.
# BENCH_ZD_THREADS load clients (8), BENCH_ZD_SWITCHES switches per method (40), BENCH_ZD_BEFORE seconds
# of load measured before the changes (10). Writes its section of docs/benchmarks.md; removes its
# containers at the end, also on failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -d .cache/collections/ansible_collections/appspec/deploy ] || scripts/bootstrap.sh
exec .venv/bin/python bench/zero_downtime/zero_downtime.py "$@"
