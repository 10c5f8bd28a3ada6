# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``ansible-doc`` renders every module, every role entry point and every callback of the collection.

Three kinds, one ``ansible-doc`` run each (text, then ``--json``), split per plugin.
The collection is found as users find it: ``ANSIBLE_COLLECTIONS_PATH`` names ``.cache/collections``, where
``scripts/bootstrap.sh`` links the checkout as ``ansible_collections/appspec/deploy``. What is rendered is
listed from the files (``plugins/modules/*.py``, ``roles/*/meta/argument_specs.yml``,
``plugins/callback/*.py``), so a new module or role is rendered without editing this test. Each run must exit 0,
print no warning or error, and show the plugin's own name and short description.
"""

from __future__ import annotations

import concurrent.futures
import glob
import json
import os
import re
import subprocess
import sys
import typing as t

import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
COLLECTIONS = os.path.join(REPO, ".cache", "collections")
ANSIBLE_DOC = os.path.join(os.path.dirname(sys.executable), "ansible-doc")


def _names(pattern: str) -> t.List[str]:
    return sorted(os.path.splitext(os.path.basename(path))[0] for path in glob.glob(os.path.join(REPO, pattern))
                  if not os.path.basename(path).startswith("_"))


MODULES = _names("plugins/modules/*.py")
CALLBACKS = _names("plugins/callback/*.py")
ROLES = sorted(os.path.basename(os.path.dirname(os.path.dirname(path)))
               for path in glob.glob(os.path.join(REPO, "roles", "*", "meta", "argument_specs.yml")))


def _entry_points(role: str) -> t.List[str]:
    with open(os.path.join(REPO, "roles", role, "meta", "argument_specs.yml"), encoding="utf-8") as handle:
        return sorted(yaml.safe_load(handle)["argument_specs"])


CASES = ([("module", name, None) for name in MODULES] + [("callback", name, None) for name in CALLBACKS]
         + [("role", role, entry) for role in ROLES for entry in _entry_points(role)])


def _env() -> t.Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_NOCOLOR="1", ANSIBLE_DEPRECATION_WARNINGS="1",
               PAGER="cat")
    return env


def _run(kind: str, names: t.Sequence[str], cwd: str) -> t.Tuple[subprocess.CompletedProcess, subprocess.CompletedProcess]:
    """One ansible-doc run for every plugin of a kind, as text and as JSON.

    Run from an empty directory: the checkout's ansible.cfg is not what a user of the installed collection has.
    """
    args = [ANSIBLE_DOC, "-t", kind] + ["appspec.deploy." + name for name in names]
    text = subprocess.run(args, capture_output=True, text=True, env=_env(), cwd=cwd, timeout=300, check=False)
    data = subprocess.run(args + ["--json"], capture_output=True, text=True, env=_env(), cwd=cwd, timeout=300, check=False)
    return text, data


def _sections(text: str) -> t.Dict[str, str]:
    """The text output split by plugin: {fqcn: its part}, from the '> MODULE appspec.deploy.x' header lines."""
    parts = {}  # type: t.Dict[str, str]
    for part in re.split(r"^(?=> )", text, flags=re.M):
        match = re.match(r"> [A-Z]+:? \*?(appspec\.deploy\.\w+)", part)
        if match:
            parts[match.group(1)] = part
    return parts


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> t.Dict[str, t.Tuple[subprocess.CompletedProcess, subprocess.CompletedProcess]]:
    """{kind: (text run, JSON run)}: three kinds, two runs each (the machine is shared)."""
    assert os.path.isdir(os.path.join(COLLECTIONS, "ansible_collections", "appspec", "deploy", "plugins")), \
        "run scripts/bootstrap.sh: it links the checkout under .cache/collections"
    cwd = str(tmp_path_factory.mktemp("ansible-doc"))
    kinds = {"module": MODULES, "callback": CALLBACKS, "role": ROLES}
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(kinds, pool.map(lambda kind: _run(kind, kinds[kind], cwd), kinds)))


def test_everything_is_found():
    assert "lifecycle_event" in MODULES and "release" in MODULES
    assert CALLBACKS == ["deployment_summary"]
    assert {"lifecycle", "revision", "rollback", "traffic"} <= set(ROLES)


@pytest.mark.parametrize("case", CASES, ids=["%s-%s%s" % (k, n, "-" + e if e else "") for k, n, e in CASES])
def test_ansible_doc_renders(rendered, case):
    kind, name, entry = case
    text, data = rendered[kind]
    for proc in (text, data):
        assert proc.returncode == 0, proc.stderr
        noise = [line for line in proc.stderr.splitlines() if line.strip()]
        assert not noise, "ansible-doc printed on stderr:\n" + proc.stderr
        assert "[WARNING]" not in proc.stdout and "[DEPRECATION" not in proc.stdout and "ERROR" not in proc.stdout
    fqcn = "appspec.deploy." + name
    doc = json.loads(data.stdout)[fqcn]
    shown = _sections(text.stdout).get(fqcn)
    assert shown, "ansible-doc -t %s shows no %s" % (kind, fqcn)
    if kind == "role":
        spec = doc["entry_points"][entry]
        assert spec.get("short_description"), "%s entry point %s has no short_description" % (fqcn, entry)
        assert spec.get("options"), "%s entry point %s documents no options" % (fqcn, entry)
        assert "ENTRY POINT: %s" % entry in shown.replace("*", "")
    else:
        meta = doc["doc"]
        assert meta.get("short_description")
        # The markup (O(), V(), C(), RV(), M(), L(), U(), I()) is rendered, not shown raw.
        raw = re.findall(r"(?<![A-Za-z])(?:O|V|C|RV|M|I|B|U|L)\([a-z_.=A-Z/<>-]+\)", shown)
        assert not raw, "%s shows raw markup: %s" % (fqcn, raw[:5])
        assert meta.get("version_added") == "0.1.0", "%s has version_added %r" % (fqcn, meta.get("version_added"))
        assert meta.get("description")
        if kind == "module":
            assert doc.get("examples"), "%s has no EXAMPLES" % fqcn
            assert doc.get("return") is not None, "%s has no RETURN" % fqcn
            assert "attributes" in meta and "check_mode" in meta["attributes"], "%s documents no attributes" % fqcn
        assert shown.replace("*", "").startswith("> %s %s" % (kind.upper(), fqcn))
