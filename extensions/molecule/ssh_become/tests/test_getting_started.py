"""Every command of docs/getting-started.md, in the order written, over SSH as `deploy` with become.

The page's inventory, revisions and deployment id are replaced by this scenario's inventory (the same
host names, web1 and web2), two revision archives made here and the id the fourth command made;
everything else is the page's own command line, run from the checkout as the page says.
"""

import os
import re
import shlex
import subprocess
import sys
import zipfile
from pathlib import Path

import testinfra

PROJECT = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
PAGE = PROJECT / "docs" / "getting-started.md"
COMMANDS = [line.strip() for line in PAGE.read_text().splitlines() if line.strip().startswith(".venv/bin/ansible-playbook ")]
DESTINATION = "/srv/myapp"
APPSPEC = """\
version: 0.0
os: linux
files:
  - source: app
    destination: /srv/myapp
hooks:
  ValidateService:
    - location: scripts/validate.sh
      timeout: 30
"""


def revision(directory: Path, version: str) -> str:
    path = directory / ("myapp-%s.zip" % version)
    with zipfile.ZipFile(str(path), "w") as archive:
        archive.writestr("appspec.yml", APPSPEC)
        archive.writestr("app/VERSION", version + "\n")
        script = zipfile.ZipInfo("scripts/validate.sh")
        script.external_attr = 0o100755 << 16
        archive.writestr(script, "#!/bin/sh\ngrep -qx %s %s/VERSION\n" % (version, DESTINATION))
    return str(path)


def versions():
    """What each host has installed, read straight from the containers."""
    found = {}
    for name in ("web1", "web2"):
        host = testinfra.get_host("podman://%s-%s" % (os.environ["MOLECULE_SCENARIO_NAME"], name))
        version = host.file(DESTINATION + "/VERSION")
        found[name] = version.content_string.strip() if version.exists else ""
    return found


def test_every_command_of_the_page_works_in_order(tmp_path):
    assert len(COMMANDS) == 6, COMMANDS
    revisions = {"/srv/builds/myapp-%s.zip" % v: revision(tmp_path, v) for v in ("1.2.0", "1.3.0")}
    deployment_ids = []

    def run(command):
        for page_path, path in revisions.items():
            command = command.replace(page_path, path)
        if deployment_ids:
            command = command.replace("d-XXXXXXXXX", deployment_ids[-1])
        argv = shlex.split(command.replace("-i inventory.yml", "-i %s" % os.environ["MOLECULE_INVENTORY_FILE"]))
        argv[0] = str(Path(sys.executable).parent / "ansible-playbook")
        proc = subprocess.run(argv, cwd=str(PROJECT), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
        out = proc.stdout.decode()
        assert proc.returncode == 0, "%s\n%s" % (command, out[-4000:])
        deployment_ids.extend(re.findall(r"(?:Deployment|Rollback) (d-[A-Z0-9]{9}) of myapp", out)[:1])
        return " ".join(out.split())

    check, one_host, every_host, next_version, rollback, named = COMMANDS
    assert "would succeed on 2 of 2 hosts" in run(check)
    assert versions() == {"web1": "", "web2": ""}
    assert "succeeded on 1 of 1 hosts" in run(one_host)
    assert versions() == {"web1": "1.2.0", "web2": ""}
    run(every_host)
    assert versions() == {"web1": "1.2.0", "web2": "1.2.0"}
    run(next_version)
    assert versions() == {"web1": "1.3.0", "web2": "1.3.0"}
    new_version_id = deployment_ids[-1]
    assert "rolled back to d-" in run(rollback)
    assert versions() == {"web1": "1.2.0", "web2": "1.2.0"}
    deployment_ids.append(new_version_id)
    run(named)
    assert versions() == {"web1": "1.3.0", "web2": "1.3.0"}
