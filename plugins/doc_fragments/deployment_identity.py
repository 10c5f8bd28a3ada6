# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Who a host-side task acts for: one deployment of one deployment group under one deployment root.
    # The argument spec is plugins/module_utils/_layout.py identity_argument_spec(); modules that need an
    # option mark it required in their own documentation. The roles set these once, through the
    # appspec.deploy.deployment action group and module_defaults.
    DOCUMENTATION = r"""
options:
  deployment_id:
    description:
      - The deployment id (C(d-) and nine characters in CodeDeploy), the same for every host of a run;
        C(DEPLOYMENT_ID) of the scripts, the name of the deployment's directory and, in release mode, of its release.
    type: str
    version_added: 0.1.0
  application_name:
    description:
      - The application name (C(APPLICATION_NAME) of the scripts); with O(deployment_group_name) it gives the
        deployment group id.
    type: str
    version_added: 0.1.0
  deployment_group_name:
    description:
      - The deployment group name (C(DEPLOYMENT_GROUP_NAME) of the scripts).
    type: str
    version_added: 0.1.0
  deployment_group_id:
    description:
      - The deployment group id (C(DEPLOYMENT_GROUP_ID) of the scripts), which names the group's directory, records
        and host lock (C(<root_dir>/locks/<deployment_group_id>.lock)).
      - Defaults to a stable UUID derived from O(application_name) and O(deployment_group_name).
    type: str
    version_added: 0.1.0
  root_dir:
    description:
      - The deployment root, as the CodeDeploy agent's C(:root_dir:).
    type: path
    default: /opt/codedeploy-agent/deployment-root
    version_added: 0.1.0
"""
