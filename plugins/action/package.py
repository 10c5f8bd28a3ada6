# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of appspec.deploy.package: check a revision directory, build its archive reproducibly, publish it.

Runs on the controller only; the logic is ``plugin_utils._package``.
"""

from __future__ import annotations

import os
import shlex
import shutil
import tempfile

from ansible.plugins.action import ActionBase

from ansible_collections.appspec.deploy.plugins.module_utils._errors import DeployError
from ansible_collections.appspec.deploy.plugins.module_utils._sources import sha256_file
from ansible_collections.appspec.deploy.plugins.plugin_utils._package import (
    FORMATS,
    archive_format,
    build_archive,
    check_revision,
    deploy_variables,
    install,
    publish,
    publish_kind,
    published_location,
)

ARGUMENT_SPEC = {
    "src": {"type": "path", "required": True},
    "dest": {"type": "path"},
    "format": {"type": "str", "choices": list(FORMATS)},
    "appspec_filename": {"type": "str"},
    "source_date_epoch": {"type": "int"},
    "publish": {"type": "str"},
    "headers": {"type": "dict", "default": {}, "no_log": True},
    "s3_endpoint_url": {"type": "str"},
    "s3_region": {"type": "str"},
}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False  # everything happens on the controller

    def run(self, tmp=None, task_vars=None):
        dummy, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        result = super().run(tmp, task_vars)
        try:
            result.update(self._package(args))
        except DeployError as err:
            result.update(failed=True, msg=str(err), **err.details)
        return result

    def _package(self, args):
        src = os.path.abspath(args["src"])
        # Default: dist/<directory name>.tar.gz (or .zip) in the current directory (AWX: the project's).
        dest = os.path.abspath(args["dest"] or os.path.join("dist", "%s.%s" % (os.path.basename(src), args["format"] or "tar.gz")))
        if dest == src or dest.startswith(src + os.sep):
            raise DeployError("dest %s must not be inside the revision directory %s" % (dest, src))
        fmt = archive_format(dest, args["format"])
        parsed = check_revision(src, args["appspec_filename"])
        before = sha256_file(dest) if os.path.isfile(dest) else None
        check_mode = bool(self._task.check_mode)
        work = tempfile.mkdtemp(prefix=".package-") if check_mode else os.path.dirname(dest)
        try:
            built = build_archive(src, work, fmt, epoch=args["source_date_epoch"], appspec_filename=args["appspec_filename"])
            if check_mode:
                changed = before != built.sha256
            else:
                changed = install(built, dest)
        finally:
            if check_mode:
                shutil.rmtree(work, ignore_errors=True)
        target = args["publish"]
        kind = publish_kind(target) if target else "dir"
        published = None
        if target:
            location = published_location(target, os.path.basename(dest))
            if check_mode:
                published = {"location": location, "version_id": None}
            else:
                published = publish(dest, built.sha256, target, headers=args["headers"],
                                    s3_endpoint_url=args["s3_endpoint_url"], s3_region=args["s3_region"])
            changed = True  # a remote target is not compared: it is written every time
        variables = deploy_variables(published["location"] if published else dest, built.sha256, kind,
                                     version_id=(published or {}).get("version_id"),
                                     s3_endpoint_url=args["s3_endpoint_url"])
        command = " ".join("-e %s" % shlex.quote("%s=%s" % item) for item in variables.items())
        verb = "would write" if check_mode else ("wrote" if changed else "kept (unchanged)")
        msg = "%s %s (sha256 %s, %d entries) and %s.sha256%s. Deploy it with: ansible-playbook playbooks/deploy.yml %s" % (
            verb, dest, built.sha256, built.entries, dest,
            (", %s %s" % ("would publish it to" if check_mode else "published to", published["location"])) if published else "",
            command)
        result = {
            "changed": changed, "archive": dest, "sha256_file": dest + ".sha256", "sha256": built.sha256,
            "size": built.size, "format": fmt, "entries": built.entries, "published": published,
            "deploy_vars": variables, "deploy_command": command, "warnings": list(parsed.warnings), "msg": msg,
        }
        if self._task.diff:
            result["diff"] = {"before": {"archive": dest, "sha256": before}, "after": {"archive": dest, "sha256": built.sha256}}
        return result
