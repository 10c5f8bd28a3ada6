#!/usr/bin/env bash
# Run `ansible-test sanity` (and, with --units, `ansible-test units`) on the collection; see docs/testing.md.
#
#   scripts/sanity.sh                       every sanity test
#   scripts/sanity.sh --test validate-modules plugins/modules/appspec_info.py   ansible-test's own arguments
#   scripts/sanity.sh --units               sanity, then ansible-test units
#
# ansible-test only runs from a real .../ansible_collections/NAMESPACE/NAME directory (a symlink does
# not do), so the checkout's files (tracked and new untracked ones, with .git) are copied into such a
# tree in a temporary directory, with the collections the plugins import. Docker is not available:
# tests run with --local, and the venvs ansible-test makes for single tests are bootstrapped by a
# stand-in for get-pip.py (its download host is unreachable here), written below when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export PATH="$root/.venv/bin:$PATH"
python_version=${APPSPEC_SANITY_PYTHON:-3.11}

units=0
args=()
for arg in "$@"; do
    if [ "$arg" = "--units" ]; then units=1; else args+=("$arg"); fi
done

site_packages=$("$root/.venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')

# The pip bootstrap script ansible-test wants, at the path it looks at first.
pip_version=$(sed -n "s/^ *pip='\([0-9.]*\)',.*/\1/p" "$site_packages/ansible_test/_internal/python_requirements.py" | head -n 1)
get_pip=$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py
marker="stand-in for get-pip.py written by appspec.deploy scripts/sanity.sh"
if [ -n "$pip_version" ] && { [ ! -f "$get_pip" ] || grep -q "$marker" "$get_pip"; }; then
    mkdir -p "$(dirname "$get_pip")"
    cat >"$get_pip.new" <<EOF
"""A $marker.

ansible-test runs this as get-pip.py to put pip into each venv it makes; the real script's
download host is unreachable here. ensurepip runs in a subprocess so that pip keeps its
configuration (index, certificates), then pip installs the packages ansible-test asked for.
"""
import subprocess
import sys

args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade"])
subprocess.check_call([sys.executable, "-m", "pip", "install", "--upgrade"] + args)
EOF
    mv "$get_pip.new" "$get_pip"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/appspec-sanity.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
dest=$tmp/ansible_collections/appspec/deploy
mkdir -p "$dest"

# Tracked files and new untracked ones (not ignored), without files deleted in the work tree.
git ls-files -z --cached --others --exclude-standard \
    | while IFS= read -r -d '' f; do
        if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\0' "$f"; fi
    done \
    | tar --null -T - -cf - | tar -C "$dest" -xf -
cp -a .git "$dest/.git"

# Collections the plugins and tests import (from the `ansible` package in the venv).
{ grep -rhoE 'ansible_collections\.[a-z0-9_]+\.[a-z0-9_]+' plugins tests 2>/dev/null || true; } | sort -u \
    | while read -r fq; do
        ns_name=${fq#ansible_collections.}
        ns=${ns_name%%.*} name=${ns_name#*.}
        [ "$ns.$name" = "appspec.deploy" ] && continue
        if [ -d "$site_packages/ansible_collections/$ns/$name" ]; then
            mkdir -p "$tmp/ansible_collections/$ns"
            cp -a "$site_packages/ansible_collections/$ns/$name" "$tmp/ansible_collections/$ns/$name"
        fi
done

cd "$dest"
rc=0
ansible-test sanity --local --python "$python_version" --color no "${args[@]}" || rc=$?
if [ "$units" = 1 ] && [ -d tests/unit ]; then
    ansible-test units --venv --python "$python_version" --color no || rc=$?
fi
exit "$rc"
