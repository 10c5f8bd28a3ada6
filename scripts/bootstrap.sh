#!/usr/bin/env bash
# Set up everything on a fresh Debian 12 machine of this kind; safe to run again.
#   scripts/bootstrap.sh          the Python virtualenv (.venv) and the collection link
#   scripts/bootstrap.sh --hosts  also podman, haproxy and the other system packages tests need
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

want_hosts=0
[ "${1:-}" = "--hosts" ] && want_hosts=1

if [ "$want_hosts" = 1 ]; then
    packages="podman runc debootstrap haproxy nginx socat wrk acl uidmap openssh-client git shellcheck"
    missing=()
    for p in $packages; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "bootstrap: installing ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    # crun fails on this kernel's hybrid cgroups and the default ulimits are refused here.
    conf=/etc/containers/containers.conf
    if ! grep -q 'runtime = "runc"' "$conf" 2>/dev/null; then
        mkdir -p /etc/containers
        printf '[containers]\ndefault_ulimits = []\n[engine]\nruntime = "runc"\n' > "$conf"
    fi
    # Many systemd containers exhaust the default inotify instances.
    sysctl -q -w fs.inotify.max_user_instances=1024 >/dev/null 2>&1 || true
fi

stamp=.venv/.requirements.sha256
want=$(sha256sum requirements-dev.txt | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "bootstrap: creating .venv"
    python3.11 -m venv .venv
    .venv/bin/pip install -q --upgrade pip
    .venv/bin/pip install -q -r requirements-dev.txt
    echo "$want" > "$stamp"
fi

# Ansible finds this checkout as the collection appspec.deploy through ansible.cfg's collections_path.
mkdir -p .cache/collections/ansible_collections/appspec
ln -sfn "$root" .cache/collections/ansible_collections/appspec/deploy
