# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The execution environment: ansible-builder writes the build context of execution-environment.yml offline, with
the collection in it, and reads the collection's own dependencies from meta/execution-environment.yml."""

from __future__ import annotations

import os
import subprocess
import sys

from bundle_fixtures import REPO

BIN = os.path.dirname(sys.executable)


def requirements(path) -> list:
    """The requirement names of a pip or bindep file, comments left out."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line.split()[0] for line in lines if line]


def test_ansible_builder_creates_the_context_offline(tmp_path):
    context = tmp_path / "context"
    proc = subprocess.run([os.path.join(BIN, "ansible-builder"), "create", "-f",
                           os.path.join(REPO, "execution-environment.yml"), "-c", str(context)],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    assert proc.returncode == 0, proc.stdout.decode()
    build = context / "_build"
    assert {"boto3", "PyYAML"} <= set(requirements(build / "requirements.txt"))
    assert "git" in requirements(build / "bindep.txt")
    containerfile = (context / "Containerfile").read_text()
    assert "--user-pip=requirements.txt --user-bindep=bindep.txt" in containerfile
    assert "ANSIBLE_INSTALL_REFS=\"ansible-core>=2.16.0 ansible-runner\"" in containerfile
    # The collection: copied into the context and installed in the final image, as root, before USER 1000.
    install = "RUN ansible-galaxy collection install /tmp/appspec.deploy -p /usr/share/ansible/collections"
    assert containerfile.index(install) < containerfile.index("USER 1000")
    assert (build / "appspec.deploy" / "roles" / "lifecycle" / "tasks" / "main.yml").is_file()
    # The copy is a collection ansible-galaxy installs (offline), with its playbooks and plugins. Not from
    # the checkout, whose ansible.cfg finds the collection installed already.
    installed = tmp_path / "installed"
    proc = subprocess.run([os.path.join(BIN, "ansible-galaxy"), "collection", "install", str(build / "appspec.deploy"),
                           "-p", str(installed)], cwd=str(tmp_path), env=dict(os.environ, ANSIBLE_CONFIG=""),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    assert proc.returncode == 0, proc.stdout.decode()
    collection = installed / "ansible_collections" / "appspec" / "deploy"
    assert (collection / "playbooks" / "deploy.yml").is_file()
    assert (collection / "plugins" / "action" / "deployment_plan.py").is_file()
    # ansible-builder's own reading of an installed collection's meta/execution-environment.yml (what any
    # execution environment that installs appspec.deploy gets).
    proc = subprocess.run([os.path.join(BIN, "ansible-builder"), "introspect", str(installed)],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    assert proc.returncode == 0, proc.stdout.decode()
    found = proc.stdout.decode()
    # (PyYAML comes with ansible-core: ansible-builder leaves it out of the collection's list.)
    assert "boto3  # from collection appspec.deploy" in found, found
    assert "git [platform:rpm platform:dpkg]  # from collection appspec.deploy" in found, found
