#!/usr/bin/env bash
# Staging benchmark (bench/staging/staging.py): bundle vs plain copy + tar -x into a podman test host.
# BENCH_STAGING_1G=1 adds the 1 GB revision (a few minutes more). Writes its section of docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec .venv/bin/python bench/staging/staging.py "$@"
