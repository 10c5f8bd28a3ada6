#!/usr/bin/env bash
# Staging benchmark (bench/staging/staging.py): appspec.deploy.bundle vs a plain ssh copy + tar -x,
# both over the same multiplexed SSH connection to a test-host container.
# BENCH_STAGING_1G=1 adds the 1 GB revision (a few minutes more). Writes its section of docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -d .cache/collections/ansible_collections/appspec/deploy ] || scripts/bootstrap.sh
exec .venv/bin/python bench/staging/staging.py "$@"
