#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: bundle
short_description: Stage a CodeDeploy revision on a host (the DownloadBundle step)
version_added: 0.1.0
description:
  - Fetches a revision (a directory or archive on the controller, an HTTP(S) URL, an S3 object or a git
    commit), verifies it, unpacks it safely and lays it out as the CodeDeploy agent does, under
    O(root_dir)C(/<deployment-group-id>/<deployment-id>/) with C(bundle.tar|tgz|zip), C(deployment-archive/)
    and C(logs/), so that hook scripts written for CodeDeploy keep working.
  - Archives (zip, tar, tar.gz) are recognised by content. Every entry is checked before anything is
    written (absolute paths, C(..), symlinks or hardlinks leaving the archive, writes through symlinks,
    devices, fifos, unpacked size over O(max_unpacked_size) or the free disk space), then the archive is
    unpacked into a temp directory beside C(deployment-archive) and renamed into place.
  - A revision whose only top-level entry is a folder holding the AppSpec is lifted one level, as the agent does.
  - The same revision already staged for the deployment group (same sha256, S3 version and ETag, or git
    commit) is not fetched again; the task then reports no change and RV(bytes_transferred) is 0.
  - Keeps at most O(max_revisions) deployment directories per group, never removing the one being
    deployed, the last successful one, the last good one, or the one C(current) points to.
  - The AppSpec is parsed with the collection's parser; a bundle with a bad AppSpec fails here.
  - Controller sources are handled by the action plugin, which transfers the file (a directory is
    packed into a tar first) only when the host does not already have that revision staged.
author:
  - appspec.deploy developers (@appspec-deploy)
extends_documentation_fragment:
  - appspec.deploy.deployment_identity
  - appspec.deploy.attributes
attributes:
  check_mode:
    support: full
    details:
      - Reports what would be fetched and where; fetches, writes and removes nothing.
  diff_mode:
    support: full
    details:
      - The diff shows the deployment directory and the sha256 staged there before and after.
  idempotent:
    support: full
    details:
      - With the same O(deployment_id) and revision, the second run reuses the staged revision.
options:
  deployment_id:
    required: true
  revision:
    description:
      - The revision. A path on the controller (a directory or a zip/tar/tar.gz archive), an
        C(http://) or C(https://) URL, C(s3://bucket/key), or a git repository URL.
      - With O(remote_src=true), a path to an archive on the managed host.
    type: str
    required: true
    version_added: 0.1.0
  revision_type:
    description:
      - The kind of O(revision). V(auto) treats C(s3://) as S3; C(git://), C(ssh://), C(git+https://),
        C(user@host:path) and URLs ending in C(.git) as git; other C(http(s)://) URLs as V(url);
        anything else as V(local).
    type: str
    choices: [auto, local, url, s3, git]
    default: auto
    version_added: 0.1.0
  remote_src:
    description:
      - For V(local) revisions, O(revision) is a file already on the managed host instead of on the controller.
      - With an empty O(revision) and O(sha256) set, only a revision already staged with that sha256 is
        reused; otherwise the module fails with RV(revision_missing=true). The action plugin uses this to
        avoid transferring revisions the host already has.
    type: bool
    default: false
    version_added: 0.1.0
  sha256:
    description:
      - Expected SHA-256 of the bundle file (hex, optionally prefixed with C(sha256:)).
      - A mismatch fails the task and stages nothing. For controller sources the action plugin computes it.
    type: str
    version_added: 0.1.0
  headers:
    description:
      - Extra HTTP headers for V(url) revisions, for example C(Authorization).
    type: dict
    version_added: 0.1.0
  s3_version_id:
    description:
      - Version id of the S3 object.
    type: str
    version_added: 0.1.0
  s3_endpoint_url:
    description:
      - Endpoint of an S3-compatible store (MinIO, Ceph, a local moto server...). Default is AWS.
      - Credentials come from boto3's usual chain (environment variables, config files, instance role).
    type: str
    version_added: 0.1.0
  s3_region:
    description:
      - Region of the S3 bucket.
    type: str
    version_added: 0.1.0
  git_ref:
    description:
      - Branch, tag or commit of a V(git) revision. Default is the remote's C(HEAD).
      - The commit it resolves to is returned as C(BUNDLE_COMMIT) in RV(bundle_env).
    type: str
    version_added: 0.1.0
  max_revisions:
    description:
      - How many deployment directories to keep per deployment group (at least 1), including the new one.
    type: int
    default: 5
    version_added: 0.1.0
  max_unpacked_size:
    description:
      - Refuse archives whose files add up to more than this many bytes unpacked (V(0) means no limit
        other than the free disk space). Accepts units such as V(500M) or V(10G).
    type: str
    default: 10G
    version_added: 0.1.0
  allow_setuid:
    description:
      - Keep setuid and setgid bits of archive entries. By default they are dropped.
    type: bool
    default: false
    version_added: 0.1.0
  appspec_filename:
    description:
      - Name of the AppSpec inside the revision; C(appspec.yml) and C(appspec.yaml) are tried after it.
      - The action plugin reads and parses that file on the controller and sends the result as O(appspec).
    type: str
    version_added: 0.1.0
  bundle_env:
    description:
      - The C(BUNDLE_*) variables of a revision the action plugin fetched on the controller (for example
        C(BUNDLE_BUCKET), C(BUNDLE_KEY), C(BUNDLE_COMMIT)). They are kept with the staged revision and given to its hooks.
    type: dict
    version_added: 0.1.0
  appspec:
    description:
      - The revision's AppSpec, normalized, as M(appspec.deploy.appspec_info) returns it (a dict with its
        C(appspec) and C(compute_platform)). The host keeps it as C(appspec.json) in the deployment directory,
        beside the untouched revision, and every later step reads it from there, so hosts never parse YAML.
      - The action plugin sets it for revisions it resolves on the controller. With O(remote_src=true) pass it.
    type: dict
    version_added: 0.1.0
  release_root:
    description:
      - In release mode, the release root; the deployment its C(current) link points to is never pruned.
    type: path
    version_added: 0.1.0
notes:
  - Ownership stored in archives is not restored; files belong to the user running the module.
    Use the AppSpec C(permissions) section to set owners.
  - The S3 source needs boto3 on the managed host; the git source needs the C(git) command there.
  - A revision reused for a new deployment id shares its files with the staged copy through hard links;
    hooks should not modify files of C(deployment-archive) in place.
  - The action plugin keeps a small cache on the controller (C(~/.cache/appspec.deploy), or
    C($APPSPEC_DEPLOY_CACHE_DIR)) of packed directories, checksums and what each host has staged.
  - See the collection's C(docs/bundle.md) for the safety rules, reuse and retention in detail.
seealso:
  - module: appspec.deploy.appspec_info
"""

EXAMPLES = r"""
- name: Stage a directory from the controller
  appspec.deploy.bundle:
    revision: "{{ playbook_dir }}/../examples/webapp"
    deployment_id: "{{ deployment_id }}"
    application_name: webapp
    deployment_group_name: production

- name: Stage an archive from S3 (or any S3-compatible store)
  appspec.deploy.bundle:
    revision: s3://releases/webapp/webapp-1.4.2.tgz
    s3_version_id: 3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY
    s3_endpoint_url: https://minio.example.com
    deployment_id: "{{ deployment_id }}"
    application_name: webapp
    deployment_group_name: production

- name: Stage a release from an HTTPS URL, verified by its checksum
  appspec.deploy.bundle:
    revision: https://artifacts.example.com/webapp-1.4.2.zip
    sha256: 9f2c1e0d8b7a6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d
    headers:
      Authorization: "Bearer {{ artifact_token }}"
    deployment_id: "{{ deployment_id }}"
    application_name: webapp
    deployment_group_name: production

- name: Stage a git tag
  appspec.deploy.bundle:
    revision: https://git.example.com/team/webapp.git
    git_ref: v1.4.2
    deployment_id: "{{ deployment_id }}"
    application_name: webapp
    deployment_group_name: production
  register: staged

- name: Show where it went
  ansible.builtin.debug:
    msg: "{{ staged.archive_dir }} ({{ staged.bundle_env.BUNDLE_COMMIT }})"
"""

RETURN = r"""
deployment_dir:
  description: The deployment directory, C(<root_dir>/<deployment-group-id>/<deployment-id>).
  returned: always
  type: str
  sample: /opt/codedeploy-agent/deployment-root/0f6f7a3e-5f7e-5b8e-9a3c-2c1d1f3c6b55/d-ABCDEFGH1
archive_dir:
  description: The unpacked revision (C(deployment-archive)), with the AppSpec at its root.
  returned: always
  type: str
  sample: /opt/codedeploy-agent/deployment-root/0f6f7a3e-5f7e-5b8e-9a3c-2c1d1f3c6b55/d-ABCDEFGH1/deployment-archive
bundle_path:
  description: The bundle file as fetched. Null in check mode when nothing is staged yet.
  returned: always
  type: str
  sample: /opt/codedeploy-agent/deployment-root/0f6f7a3e-5f7e-5b8e-9a3c-2c1d1f3c6b55/d-ABCDEFGH1/bundle.tgz
sha256:
  description: SHA-256 of the bundle file.
  returned: always
  type: str
  sample: 9f2c1e0d8b7a6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d
size:
  description: Size of the bundle file in bytes (null when not known in check mode).
  returned: always
  type: int
  sample: 10485760
bytes_transferred:
  description: Bytes moved to the host by this task (0 when the revision was already staged).
  returned: always
  type: int
  sample: 0
reused:
  description: Whether a revision already staged on the host was reused instead of fetched.
  returned: always
  type: bool
  sample: true
reused_from:
  description: The deployment directory whose staged revision was reused (hard-linked).
  returned: when a revision staged for another deployment was reused
  type: str
bundle_type:
  description: V(tar), V(tgz) or V(zip), as recognised from the content.
  returned: always
  type: str
  sample: tgz
appspec:
  description: The normalized AppSpec (see M(appspec.deploy.appspec_info)). Null in check mode when nothing is staged.
  returned: always
  type: dict
compute_platform:
  description: V(server), V(ecs) or V(lambda).
  returned: always
  type: str
  sample: server
bundle_env:
  description:
    - The C(BUNDLE_*) variables the CodeDeploy agent gives hooks for this source (C(BUNDLE_BUCKET),
      C(BUNDLE_KEY), C(BUNDLE_VERSION), C(BUNDLE_ETAG) for S3; C(BUNDLE_COMMIT) for git; none otherwise).
  returned: always
  type: dict
  sample: {"BUNDLE_COMMIT": "1f0e2d3c4b5a69788796a5b4c3d2e1f0a9b8c7d6"}
deployment_group_id:
  description: The deployment group id used in paths.
  returned: always
  type: str
  sample: 0f6f7a3e-5f7e-5b8e-9a3c-2c1d1f3c6b55
deployment_id:
  description: The deployment id.
  returned: always
  type: str
  sample: d-ABCDEFGH1
source:
  description: The source type, the revision (passwords in URLs masked) and what identifies it (S3 version/etag, git commit).
  returned: always
  type: dict
pruned:
  description: Deployment directories removed by retention (or that would be, in check mode).
  returned: always
  type: list
  elements: str
hoisted:
  description: The single top-level folder that was lifted to be the archive dir, if any.
  returned: when staged
  type: str
revision_missing:
  description: True when O(remote_src=true) and the revision is neither on the host nor staged.
  returned: on failure
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.formatters import human_to_bytes

from ansible_collections.appspec.deploy.plugins.module_utils._staging import StageOptions, stage
from ansible_collections.appspec.deploy.plugins.module_utils._errors import DeployError
from ansible_collections.appspec.deploy.plugins.module_utils._spec import ParsedAppSpec
from ansible_collections.appspec.deploy.plugins.module_utils._layout import identity_argument_spec
from ansible_collections.appspec.deploy.plugins.module_utils._upload import consumes_upload, drop_upload


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            identity_argument_spec("deployment_id"),
            revision=dict(type="str", required=True),
            revision_type=dict(type="str", default="auto", choices=["auto", "local", "url", "s3", "git"]),
            remote_src=dict(type="bool", default=False),
            sha256=dict(type="str"),
            headers=dict(type="dict", no_log=True),
            s3_version_id=dict(type="str"),
            s3_endpoint_url=dict(type="str"),
            s3_region=dict(type="str"),
            git_ref=dict(type="str"),
            max_revisions=dict(type="int", default=5),
            max_unpacked_size=dict(type="str", default="10G"),
            allow_setuid=dict(type="bool", default=False),
            appspec_filename=dict(type="str"),
            appspec=dict(type="dict"),
            bundle_env=dict(type="dict"),
            release_root=dict(type="path"),
        ),
        required_together=[("application_name", "deployment_group_name")],
        required_one_of=[("deployment_group_id", "application_name")],
        supports_check_mode=True,
    )
    p = module.params
    try:
        max_size = human_to_bytes(p["max_unpacked_size"])
    except ValueError as err:
        module.fail_json(msg="max_unpacked_size: %s" % err)
    consume = bool(p["remote_src"]) and consumes_upload(p["revision"], getattr(module, "_tmpdir", None))
    try:
        opts = StageOptions(
            p["revision"], p["deployment_id"], revision_type=p["revision_type"], remote_src=p["remote_src"],
            sha256=p["sha256"], headers=p["headers"], s3_version_id=p["s3_version_id"],
            s3_endpoint_url=p["s3_endpoint_url"], s3_region=p["s3_region"], git_ref=p["git_ref"],
            application_name=p["application_name"], deployment_group_name=p["deployment_group_name"],
            deployment_group_id=p["deployment_group_id"], root_dir=p["root_dir"], max_revisions=p["max_revisions"],
            max_unpacked_size=max_size, allow_setuid=p["allow_setuid"],
            appspec=ParsedAppSpec.from_dict(p["appspec"], "appspec") if p["appspec"] is not None else None,
            release_root=p["release_root"], consume_upload=consume, bundle_env=p["bundle_env"],
        )
        result = stage(opts, check_mode=module.check_mode)
    except DeployError as err:
        drop_upload(p["revision"], consume)
        module.fail_json(msg=str(err), **err.details)
    if drop_upload(p["revision"], consume):
        # We removed the action plugin's temp dir ourselves: spare it a round trip.
        result["_ansible_suppress_tmpdir_delete"] = True
    if not module._diff:
        result.pop("diff", None)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
