"""A faster testinfra ``host`` fixture for the appspec.deploy Molecule scenarios.

testinfra's ansible backend cannot speak the ``containers.podman.podman`` connection itself and
falls back to one ``ansible`` run per command (about a second each). For such hosts this fixture
hands out testinfra's own ``podman://`` backend on the same container instead; SSH hosts keep
the backend Molecule configured. A scenario enables it with ``tests/conftest.py``::

    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))
    from testinfra_hosts import host  # noqa: E402,F401
"""

from __future__ import annotations

import pytest
import testinfra


@pytest.fixture(scope="module")
def host(_testinfra_host):
    """The host under test; podman-connected hosts are reached with ``podman exec``."""
    backend = _testinfra_host.backend
    if backend.NAME != "ansible":
        return _testinfra_host
    variables = backend.get_variables()
    if variables.get("ansible_connection") != "containers.podman.podman":
        return _testinfra_host
    container = variables.get("ansible_host", variables["inventory_hostname"])
    return testinfra.get_host("podman://" + container)
