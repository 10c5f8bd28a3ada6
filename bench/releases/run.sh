#!/usr/bin/env bash
# Release directories benchmark: new release with hardlinks vs a full copy, and switch latency.
# Run from anywhere: bench/releases/run.sh  (writes the "releases" section of docs/benchmarks.md)
set -euo pipefail
cd "$(dirname "$0")/../.."
python=.venv/bin/python
[ -x "$python" ] || python=python3
exec "$python" bench/releases/run.py "$@"
