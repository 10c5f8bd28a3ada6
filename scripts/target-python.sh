#!/usr/bin/env bash
# Run the module_utils unit tests under the oldest Python the modules support on hosts (3.8),
# in a virtualenv of its own (.venv38) holding pytest only, as hosts hold the standard library only.
# Machines of this kind carry it under pyenv.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${TARGET_PYTHON:-}
for candidate in "$python" /root/.pyenv/versions/3.8.*/bin/python3.8 "$(command -v python3.8 || true)"; do
    if [ -n "$candidate" ] && [ -x "$candidate" ] && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 8))' 2>/dev/null; then
        python=$candidate
        break
    fi
done
if [ -z "$python" ] || [ ! -x "$python" ]; then
    echo "target-python: no Python 3.8 on this machine (set TARGET_PYTHON); this check cannot run here" >&2
    exit 1
fi
# pytest alone: hosts have nothing but the standard library, so the host-side tests must need nothing
# else either (a PyYAML or boto3 here would hide a host-side dependency). A .venv38 with more in it
# (made by an older version of this script) is made again.
if [ -x .venv38/bin/python ] && .venv38/bin/python -c 'import yaml' 2>/dev/null; then
    rm -rf .venv38
fi
if [ ! -x .venv38/bin/pytest ]; then
    "$python" -m venv .venv38
    .venv38/bin/pip install -q pytest
fi
.venv38/bin/python --version
exec .venv38/bin/pytest -q -p no:cacheprovider tests/unit/plugins/module_utils
