# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Hosts need Python's standard library only: no host-side file imports a third-party or controller package."""

from __future__ import annotations

import ast
import os
import subprocess
import sys

import pytest

PLUGINS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))), "plugins")
HOST_DIRS = ("module_utils", "modules")
# Never on a host, not even imported lazily inside a function.
FORBIDDEN = ("yaml", "boto3", "botocore", "moto", "requests", "ansible_collections.appspec.deploy.plugins.plugin_utils",
             "ansible_collections.appspec.deploy.plugins.action")


def _host_files():
    for directory in HOST_DIRS:
        for name in sorted(os.listdir(os.path.join(PLUGINS, directory))):
            if name.endswith(".py"):
                yield os.path.join(directory, name)


def _imports(path):
    with open(os.path.join(PLUGINS, path)) as handle:
        tree = ast.parse(handle.read(), path)
    for node in ast.walk(tree):  # every import, top level or inside a function
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.lineno, node.module


@pytest.mark.parametrize("path", list(_host_files()))
def test_host_files_import_no_controller_only_package(path):
    bad = ["%s:%d imports %s" % (path, line, name) for line, name in _imports(path)
           if any(name == f or name.startswith(f + ".") for f in FORBIDDEN)]
    assert bad == []


def test_module_utils_import_with_yaml_and_boto3_missing():
    """Importing every host-side helper works on a Python where PyYAML and boto3 cannot be imported."""
    names = [name[:-3] for name in os.listdir(os.path.join(PLUGINS, "module_utils")) if name.endswith(".py")]
    code = ("import sys\n"
            "for blocked in ('yaml', 'boto3', 'botocore'):\n"
            "    sys.modules[blocked] = None  # import fails\n"
            "sys.path.insert(0, %r)\n"
            "for name in %r:\n"
            "    __import__('ansible_collections.appspec.deploy.plugins.module_utils.' + name)\n"
            % (os.path.join(os.path.dirname(PLUGINS), ".cache", "collections"), sorted(names)))
    proc = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    assert proc.returncode == 0, proc.stdout.decode()
