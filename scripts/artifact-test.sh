#!/usr/bin/env bash
# Test the collection as its users get it (docs/testing.md, "artifact"):
#   1. `ansible-galaxy collection build` into a temp dir; the tarball must hold what users need
#      and nothing of the checkout's development files (tests, caches, venvs, CI, scripts...);
#   2. a fresh virtualenv with ansible-core alone (pinned as in requirements-dev.txt), the tarball
#      installed into an empty directory, and the INSTALLED playbook appspec.deploy.deploy deploying
#      the INSTALLED example (examples/webapp) to this machine, from a temp working directory with
#      no ansible.cfg and nothing of the checkout on any path;
#   3. the release notes: `antsibull-changelog lint`, then `release` in a temp copy (a release
#      consumes the fragments), and every new module, plugin and role listed exactly once.
# pip downloads are kept as wheels in .cache/artifact/ so that a second run needs no network.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
dev=$root/.venv/bin  # the build and changelog tools (scripts/bootstrap.sh); never used to deploy
cache=$root/.cache/artifact
work=$(mktemp -d "${TMPDIR:-/tmp}/appspec-artifact.XXXXXX")
t0=$SECONDS

step() { echo "=== artifact: $* ($((SECONDS - t0)) s)"; }
fail() { echo "artifact-test: $*" >&2; exit 1; }

# The example's server is detached from the hooks (setsid): stop it, whatever happened.
cleanup() {
    local pid
    pid=$(cat "$work/state/server.pid" 2>/dev/null || true)
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

for tool in ansible-galaxy antsibull-changelog python; do
    [ -x "$dev/$tool" ] || fail "$dev/$tool is missing: run scripts/bootstrap.sh"
done

# --- 1. the tarball ---------------------------------------------------------------------------
step "build"
"$dev/ansible-galaxy" collection build --output-path "$work/dist" "$root" >/dev/null
tarballs=("$work"/dist/*.tar.gz)
[ ${#tarballs[@]} -eq 1 ] || fail "expected one tarball, got: ${tarballs[*]}"
tarball=${tarballs[0]}
tar -tzf "$tarball" | sed 's|^\./||; s|/$||' | LC_ALL=C sort -u >"$work/members"
echo "$(basename "$tarball"): $(wc -l <"$work/members") members, $(du -k "$tarball" | cut -f1) KiB"

# Forbidden anywhere: hidden files and directories (.git*, .venv*, .cache, .ci...), Python caches,
# built tarballs; at the top: the development files. An allowlist of top-level entries also
# catches anything new, which must then be added to galaxy.yml's build_ignore or to this list.
forbidden=$(grep -E -e '(^|/)\.' -e '(^|/)__pycache__(/|$)' -e '\.py[co]$' -e '\.tar\.gz$' \
    -e '^(tests|bench|scripts|extensions|collections|inventory|build)(/|$)' \
    -e '^(Makefile|ansible\.cfg|requirements-dev\.txt)$' \
    -e '^changelogs/(fragments|\.plugin-cache\.yaml)(/|$)' "$work/members" || true)
unexpected=$(grep -v -E \
    -e '^(MANIFEST\.json|FILES\.json|README\.md|CHANGELOG\.(rst|md)|LICENSE|COPYING)$' \
    -e '^(plugins|roles|playbooks|meta|docs|examples)(/|$)' \
    -e '^changelogs(/(changelog|config)\.yaml)?$' "$work/members" || true)
[ -z "$forbidden" ] || fail "the tarball holds development files:"$'\n'"$forbidden"
[ -z "$unexpected" ] || fail "the tarball holds files outside what users need (see galaxy.yml):"$'\n'"$unexpected"

# Everything users need is there: each file of those directories in the checkout.
missing=$(
    find plugins roles playbooks meta docs examples -type f ! -name '*.py[co]' ! -path '*/__pycache__/*' \
        -printf '%p\n' | LC_ALL=C sort | LC_ALL=C comm -23 - "$work/members"
    for file in README.md changelogs/changelog.yaml; do grep -qxF "$file" "$work/members" || echo "$file"; done
)
[ -z "$missing" ] || fail "the tarball lacks:"$'\n'"$missing"

# --- 2. install into a fresh virtualenv and deploy ----------------------------------------------
step "fresh virtualenv"
core_spec=$(sed -n 's/^\(ansible-core[<>=!~,.0-9]*\).*/\1/p' requirements-dev.txt)
[ -n "$core_spec" ] || fail "no ansible-core line in requirements-dev.txt"
python3 -m venv "$work/venv"
venv=$work/venv/bin
pyver=$("$venv/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
# Wheels of ansible-core and PyYAML (the controller's only runtime needs; boto3 is for s3:// only),
# per requirement and Python version: downloaded once through pip's configured index.
wheels=$cache/wheels-py$pyver-$(printf '%s' "$core_spec PyYAML" | sha256sum | cut -c1-12)
if [ ! -f "$wheels/.complete" ]; then
    rm -rf "$wheels"
    PIP_CACHE_DIR=$cache/pip "$venv/pip" wheel --quiet --disable-pip-version-check \
        --wheel-dir "$wheels" "$core_spec" PyYAML
    touch "$wheels/.complete"
fi
# --no-compile: byte-compiling ansible-core is most of the install time and tests nothing.
"$venv/pip" install --quiet --disable-pip-version-check --no-compile --no-index --find-links "$wheels" "$core_spec" PyYAML
core_version=$("$venv/ansible" --version)
echo "${core_version%%$'\n'*} in a fresh virtualenv (Python $pyver)"

# What the collection's ansible commands see: the fresh venv and system tools on PATH, no ANSIBLE_*
# of the caller, an empty ansible.cfg, temp HOME and caches, the install dir as the only collections.
mkdir -p "$work/home" "$work/cwd" "$work/collections"
: >"$work/ansible.cfg"
port=$("$venv/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
run() {
    (cd "$work/cwd" && env -i PATH="$venv:/usr/local/bin:/usr/bin:/bin" HOME="$work/home" LANG=C.UTF-8 \
        ANSIBLE_CONFIG="$work/ansible.cfg" ANSIBLE_COLLECTIONS_PATH="$work/collections" \
        ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false ANSIBLE_LOCAL_TEMP="$work/home/tmp" \
        ANSIBLE_NOCOLOR=1 APPSPEC_DEPLOY_CACHE_DIR="$work/controller-cache" APP_PORT="$port" "$@")
}

step "install"
run ansible-galaxy collection install --offline -p "$work/collections" "$tarball" >/dev/null
installed=$work/collections/ansible_collections/appspec/deploy
[ -f "$installed/MANIFEST.json" ] || fail "not installed at $installed"
run ansible-doc appspec.deploy.lifecycle_event >/dev/null

# The installed playbooks' default revision is the installed example, released under
# /opt/appspec-example (planned only: deploying it would replace this machine's own example).
step "default revision"
# (ansible-core has no json stdout callback: the default one prints "localhost | STATUS => {json}".)
run ansible localhost -i localhost, -c local -e "ansible_python_interpreter=$venv/python" \
    -m appspec.deploy.deployment_plan -a "hosts=localhost root_dir=$work/plan-root" >"$work/plan.out" \
    || { cat "$work/plan.out"; fail "deployment_plan of the default revision failed"; }
"$venv/python" - "$work/plan.out" "$installed" <<'PY'
import json, os, sys
output = open(sys.argv[1]).read()
result = json.loads(output[output.index("=>") + 2:])
plan = result.get("deployment") or sys.exit("deployment_plan failed: %s" % result.get("msg"))
expected = os.path.realpath(os.path.join(sys.argv[2], "examples", "webapp"))
assert os.path.realpath(plan["revision"]) == expected, (plan["revision"], expected)
assert plan["application_name"] == "webapp" and plan["release_root"] == "/opt/appspec-example", plan
print("default revision: %s (%s, release root %s)" % (plan["revision"], plan["application_name"], plan["release_root"]))
PY

# The example's AppSpec and scripts name /opt/appspec-example and /var/lib/appspec-example, where
# this machine runs its own copy of the example on port 8080: deploy the installed example with
# those two paths moved into the temp dir, the port from APP_PORT (server.py and
# validate_service.sh read it) and no systemd unit (a transient unit would not get APP_PORT and
# its name would clash); nothing else of the revision changes.
revision=$work/revision
cp -a "$installed/examples/webapp" "$revision"
sed -i -e "s|/opt/appspec-example|$work/opt/appspec-example|g" -e "s|/var/lib/appspec-example|$work/state|g" \
    -e 's|-d /run/systemd/system|-d /nonexistent/systemd|' "$revision/appspec.yml" "$revision"/scripts/*
if grep -rnE '(^|[^[:alnum:]_.-])/(opt|var/lib)/appspec-example|/run/systemd/system' "$revision"; then
    fail "the example names a path of this machine that this test does not move (above)"
fi

step "deploy (port $port)"
run env ANSIBLE_CALLBACKS_ENABLED=appspec.deploy.deployment_summary \
    APPSPEC_DEPLOY_SUMMARY_FILE="$work/summary.json" \
    ansible-playbook appspec.deploy.deploy -i localhost, -c local \
    -e "ansible_python_interpreter=$venv/python" -e "appspec_revision=$revision" \
    -e appspec_application_name=appspec-artifact-test -e "appspec_root_dir=$work/deployment-root" \
    -e "appspec_release_root=$work/opt/appspec-example" >"$work/deploy.log" 2>&1 \
    || { cat "$work/deploy.log"; fail "ansible-playbook appspec.deploy.deploy failed"; }
# The recap, the summary table and any warning: the run passes with warnings, but shows them.
grep -E -A 20 'PLAY RECAP' "$work/deploy.log" | grep -v '^$' || true
grep -E '^\[(WARNING|DEPRECATION WARNING)\]' "$work/deploy.log" || true

version=$(cat "$installed/examples/webapp/app/VERSION")
"$venv/python" - "$port" "$version" "$work" <<'PY'
import json, os, sys, urllib.request
port, version, work = sys.argv[1:]
summary = json.load(open(os.path.join(work, "summary.json")))
deployment = next(d for d in summary["deployments"] if d["kind"] == "deployment")
assert deployment["status"] == "succeeded", deployment
deployment_id = deployment["deployment_id"]
current = os.path.join(work, "opt", "appspec-example", "current")
assert os.readlink(current) == "releases/" + deployment_id, os.readlink(current)
installed = open(os.path.join(current, "VERSION")).read().strip()
assert installed == version, (installed, version)
body = urllib.request.urlopen("http://127.0.0.1:%s/" % port, timeout=5).read().decode()
words = body.split()
for word in ("version=" + version, "release=" + deployment_id, "deployment=" + deployment_id):
    assert word in words, (word, body)
events = sorted(os.listdir(os.path.join(work, "state", "markers")))
assert {"ApplicationStart", "ValidateService", "AfterInstall"} <= set(events), events
print("deployed %s: current -> releases/%s, serving: %s" % (deployment_id, deployment_id, body.strip()))
PY

# --- 3. release notes ----------------------------------------------------------------------------
step "changelog"
copy=$work/changelog
mkdir -p "$copy"
cp -a galaxy.yml README.md changelogs plugins roles playbooks meta "$copy/"
rm -f "$copy/changelogs/.plugin-cache.yaml"
release=$(sed -n 's/^version: *//p' galaxy.yml)
(
    cd "$copy"
    export PATH="$dev:$PATH"  # antsibull-changelog runs ansible-doc to list the plugins
    antsibull-changelog lint
    antsibull-changelog release --version "$release" 2>&1 | grep -v 'no release_summary section' || true
    antsibull-changelog lint-changelog-yaml changelogs/changelog.yaml
    [ -z "$(ls changelogs/fragments)" ] || fail "release left fragments: $(ls changelogs/fragments)"
)
"$dev/python" - "$copy" "$release" <<'PY'
import io, os, re, sys
import docutils.core, yaml
copy, release = sys.argv[1:]
text = open(os.path.join(copy, "CHANGELOG.rst")).read()
# Valid reStructuredText: any docutils warning is an error.
docutils.core.publish_doctree(text, settings_overrides={"halt_level": 2, "report_level": 2, "warning_stream": io.StringIO()})
cache = yaml.safe_load(open(os.path.join(copy, "changelogs", ".plugin-cache.yaml")))
errors = []
lines = text.splitlines()
# Level-2 sections of the release: title line followed by a line of '-'.
sections, title = {}, None
for i, line in enumerate(lines):
    if i + 1 < len(lines) and lines[i + 1] and set(lines[i + 1]) == {"-"} and len(lines[i + 1]) >= len(line) > 0:
        title = line
        sections[title] = []
    elif title is not None:
        sections[title].append(line)
new = {t: body for t, body in sections.items() if t.startswith("New ")}
others = [line for t, body in sections.items() if t not in new for line in body]
def listed(name):
    return sum(1 for body in new.values() for line in body if line.startswith("- appspec.deploy.%s - " % name))
def announced(kind, name):  # "name - new module ...", "roles/name - new role ..." outside the New sections
    if kind == "role":
        pattern = r"^- (?:roles/)?%s(?: role)? - new role\b"
    else:
        pattern = r"^- %s(?: \w+)? - new (?:module|action|plugin|callback|\w+ plugin)\b"
    return sum(1 for line in others if re.match(pattern % re.escape(name), line))
objects = [(kind, name, info) for kind, names in cache["plugins"].items() for name, info in names.items()]
objects += [(kind, name, info) for kind, names in cache.get("objects", {}).items() for name, info in names.items()]
names = [name for kind, name, info in objects]
if not any(kind == "module" for kind, name, info in objects):
    errors.append("the plugin cache lists no module: antsibull-changelog did not see the plugins")
for kind, name, info in objects:
    if str(info.get("version_added")) == release:
        if listed(name) != 1:
            errors.append("%s %s (version_added %s) is listed %d times under New ..." % (kind, name, release, listed(name)))
        if announced(kind, name):
            errors.append("%s %s is new in %s and a fragment announces it too: remove that 'new' entry" % (kind, name, release))
    elif kind == "role" and info.get("version_added") is None:
        # No version_added in the role's argument_specs: a fragment must announce it, once.
        if announced(kind, name) != 1:
            errors.append("role %s is announced %d times as new (want 1, or version_added: %s in its argument_specs)"
                          % (name, announced(kind, name), release))
if errors:
    sys.exit("CHANGELOG.rst:\n  " + "\n  ".join(errors))
print("CHANGELOG.rst %s: %s; %d modules/plugins/roles checked"
      % (release, ", ".join("%s (%d)" % (t, sum(1 for line in b if line.startswith("- "))) for t, b in new.items()), len(names)))
PY

step "passed"
