# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The playbook variable contract: every ``appspec_*`` variable (docs/variables.md), in ONE place,
and the variables of AWX / Automation Controller the plan reads.

``deployment_plan`` reports the ``appspec_*`` variables it sees that are not in the contract (a typo
must not pass unnoticed), and converts the values of the ones it takes itself: the role passes them as
given (text from an AWX survey, ``-e key=value``, YAML), and a wrong value is one short error naming the
variable the user set, not the role variable or module option it went through.
"""

from __future__ import annotations

import difflib
import typing as t

from ansible.module_utils.common.validation import check_type_dict
from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.appspec.deploy.plugins.module_utils._errors import DeployError
from ansible_collections.appspec.deploy.plugins.module_utils._spec import FILE_EXISTS_BEHAVIORS

REVISION_DOWNLOADS = ("controller", "host")


class VariableError(DeployError):
    """A playbook variable that is unknown (strict mode) or has a value of the wrong kind."""


class Variable(t.NamedTuple):
    option: t.Optional[str] = None  # the deployment_plan option it sets; None: read by other roles or playbooks
    kind: str = "str"  # str, bool, count (a whole number of 1 or more), list (of strings), dict, raw
    default: t.Any = None  # also what an empty value (an unanswered survey question) means
    choices: t.Tuple[str, ...] = ()  # matched without regard to case


# The table of docs/variables.md (a unit test keeps the two equal).
VARIABLES = {
    "appspec_revision": Variable("revision", default=""),
    "appspec_revision_sha256": Variable("sha256", default=""),
    "appspec_revision_download": Variable("revision_download", default="controller", choices=REVISION_DOWNLOADS),
    "appspec_application_name": Variable("application_name", default=""),
    "appspec_deployment_group_name": Variable("deployment_group_name", default="default"),
    "appspec_deployment_group_id": Variable("deployment_group_id", default=""),
    "appspec_deployment_config": Variable("deployment_config", "raw", "CodeDeployDefault.OneAtATime"),
    "appspec_file_exists_behavior": Variable("file_exists_behavior", default="DISALLOW", choices=FILE_EXISTS_BEHAVIORS),
    "appspec_ignore_application_stop_failures": Variable("ignore_application_stop_failures", "bool", False),
    "appspec_break_stale_lock": Variable(),
    "appspec_auto_rollback": Variable("auto_rollback", "bool", True),
    "appspec_root_dir": Variable("root_dir", default="/opt/codedeploy-agent/deployment-root"),
    "appspec_release_root": Variable("release_root", default=""),
    "appspec_keep_releases": Variable("keep_releases", "count", 5),
    "appspec_shared_paths": Variable("shared_paths", "list", ()),
    "appspec_load_balancer": Variable("load_balancer", "dict", {}),
    "appspec_lb_server": Variable(),
    # Blue/green and canary (playbooks/blue_green.yml, playbooks/canary.yml; docs/traffic.md)
    "appspec_blue_green_groups": Variable(),
    "appspec_blue_green_live": Variable(),
    "appspec_blue_green_phase": Variable(),
    "appspec_blue_green_original": Variable(),
    "appspec_blue_green_stop_wait": Variable(),
    "appspec_traffic_reroute": Variable(),
    "appspec_traffic_approved": Variable(),
    "appspec_approval_file": Variable(),
    "appspec_approval_timeout": Variable(),
    "appspec_canary_steps": Variable(),
    "appspec_canary_analysis": Variable(),
    "appspec_hosts": Variable("hosts_pattern", default="all"),
    "appspec_deployment_id": Variable("deployment_id", default=""),
    "appspec_appspec_filename": Variable("appspec_filename", default=""),
    "appspec_s3_endpoint_url": Variable("s3_endpoint_url"),
    "appspec_s3_region": Variable("s3_region"),
    "appspec_s3_version_id": Variable("s3_version_id"),
    "appspec_git_ref": Variable("git_ref"),
    "appspec_http_headers": Variable("headers", "dict", {}),
    "appspec_strict_variables": Variable("strict_variables", "bool", False),
    "appspec_validate_revision": Variable(),
    "appspec_rollback_target": Variable(),
    # Watch and preflight (docs/pipeline.md): watch.yml (imported by deploy.yml), preflight.yml.
    "appspec_watch_seconds": Variable(),
    "appspec_watch_interval": Variable(),
    "appspec_watch_probes": Variable(),
    "appspec_watch_max_failure_rate": Variable(),
    "appspec_watch_max_latency_ms": Variable(),
    "appspec_watch_max_error_rate": Variable(),
    "appspec_watch_min_requests": Variable(),
    "appspec_preflight": Variable(),
    # Pipeline (docs/pipeline.md): package.yml, the revision history, promote.yml, history.yml.
    "appspec_package_src": Variable(),
    "appspec_package_dest": Variable(),
    "appspec_package_format": Variable(),
    "appspec_package_publish": Variable(),
    "appspec_history_dir": Variable(),
    "appspec_history_environment": Variable(),
    "appspec_history_limit": Variable(),
    "appspec_history_json": Variable(),
    "appspec_environments": Variable(),
    "appspec_promote_action": Variable(),
    "appspec_block_reason": Variable(),
    # Set by AWX for every job of a workflow job, the slices of a sliced job included (docs/awx.md):
    # the slices derive one deployment id from them (_plan.deployment_ids).
    "awx_workflow_job_id": Variable("workflow_job_id", default=""),
    "awx_job_template_id": Variable("job_template_id", default=""),
}  # type: t.Dict[str, Variable]
# Set by the playbooks themselves for every host (the deployment record), never by users.
SET_BY_PLAYBOOKS = ("appspec_deployment",)
_PREFIX = "appspec_"
_WHAT = {
    "str": "a string",
    "bool": "true or false",
    "count": "a whole number of 1 or more",
    "list": "a list of paths (or one comma-separated string)",
    "dict": "a mapping (YAML, or JSON text)",
}


def check_variables(names: t.Iterable[str], strict: bool) -> t.List[str]:
    """A warning for each ``appspec_*`` name that is not a variable of the contract, with the closest one.

    ``strict`` (appspec_strict_variables) makes them one error instead.
    """
    unknown = sorted(name for name in names if name.startswith(_PREFIX)
                     and name not in VARIABLES and name not in SET_BY_PLAYBOOKS)
    closest = {name: difflib.get_close_matches(name, list(VARIABLES), n=1) for name in unknown}
    if unknown and strict:
        raise VariableError("Unknown variables (appspec_strict_variables is true): %s. docs/variables.md lists the "
                            "variables of appspec.deploy." % ", ".join(
                                "%s (did you mean %s?)" % (name, closest[name][0]) if closest[name] else name
                                for name in unknown))
    return ["%s is not a variable of appspec.deploy and is ignored%s docs/variables.md lists the variables "
            "(appspec_strict_variables: true makes this an error)."
            % (name, "; did you mean %s?" % closest[name][0] if closest[name] else ".") for name in unknown]


def _convert(value: t.Any, variable: Variable) -> t.Any:
    """``value`` as ``variable.kind``; raises TypeError or ValueError when it is not one."""
    if value is None or value == "":
        if variable.default is None:
            return None
        value = variable.default  # converted below: each plan gets its own list or dict
    kind = variable.kind
    if kind == "raw":
        return value
    if kind == "bool":
        return boolean(value, strict=True)
    if kind == "count":
        if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).strip().isdigit():
            raise ValueError(value)
        if int(value) < 1:  # hosts refuse to keep no release at all (_releases.prune)
            raise ValueError(value)
        return int(value)
    if kind == "list":
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, (list, tuple)) or not all(isinstance(item, str) for item in value):
            raise TypeError(value)
        return list(value)
    if kind == "dict":
        return dict(check_type_dict(value))
    # Text: survey answers and -e key=value are text already; a number is taken as written.
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise TypeError(value)
    text = str(value).strip()
    if variable.choices:
        matches = [choice for choice in variable.choices if choice.lower() == text.lower()]
        if not matches:
            raise ValueError(value)
        return matches[0]
    return text


def typed_options(options: t.Mapping[str, t.Any]) -> t.Dict[str, t.Any]:
    """deployment_plan's options with the value of every option a playbook variable sets converted.

    An error names the playbook variable (``appspec_keep_releases``) and what it must be.
    """
    typed = dict(options)
    for name, variable in VARIABLES.items():
        if variable.option is None:
            continue
        value = options.get(variable.option)
        try:
            typed[variable.option] = _convert(value, variable)
        except (TypeError, ValueError):
            what = "one of %s" % ", ".join(variable.choices) if variable.choices else _WHAT[variable.kind]
            raise VariableError("%s must be %s, not %r" % (name, what, value))
    return typed
