# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The deployment-root layout: the ids that become paths and the root they go under."""

from __future__ import annotations

import pytest

from ansible_collections.appspec.deploy.plugins.module_utils._errors import DeployError
from ansible_collections.appspec.deploy.plugins.module_utils._layout import DeploymentRoot, check_id


@pytest.mark.parametrize("value", ["d-ABCDEFGHI", "6f1c2d4e-8a7b-4c3d-9e0f-a1b2c3d4e5f6", "a.b_c-1"])
def test_safe_ids_pass(value):
    assert check_id(value, "deployment id") == value


@pytest.mark.parametrize("value", ["", ".", "..", "../x", "a/b", "-a", ".a", "a b",
                                   # Issue 14.2: '$' matched before a trailing newline.
                                   "d-1\n", "d-1\n\n", "\nd-1", "d-1\r", "d-\n1"])
def test_unsafe_ids_are_refused(value):
    with pytest.raises(DeployError, match="may only hold letters, digits"):
        check_id(value, "deployment id")


def test_every_path_of_the_layout_checks_its_ids(tmp_path):
    root = DeploymentRoot(str(tmp_path))
    for call in (lambda: root.deployment_dir("g", "d-1\n"), lambda: root.group_dir("g\n"),
                 lambda: root.cleanup_file("g\n"), lambda: root.record_path("g\n", "last_good_deployment")):
        with pytest.raises(DeployError, match="may only hold"):
            call()


@pytest.mark.parametrize("root_dir", ["deployment-root", "./root", "../root", ""])
def test_a_relative_root_dir_is_refused(root_dir):
    """Issue 14.3: a relative root_dir wrote the deployment root under the checkout's playbooks/."""
    with pytest.raises(DeployError, match="root_dir must be an absolute path"):
        DeploymentRoot(root_dir)
