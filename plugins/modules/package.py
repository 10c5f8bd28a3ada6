# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: package
short_description: Build a CodeDeploy revision archive reproducibly from a directory, and publish it
version_added: 0.1.0
description:
  - The build stage of a pipeline (C(playbooks/package.yml), C(docs/pipeline.md)). Runs on the controller only.
  - Checks the revision directory O(src) first and refuses it with EVERY problem listed at once, in RV(problems)
    - each error of its AppSpec (with line and column), each hook script missing from the revision, each
    C(files) source that does not exist in it.
  - Builds O(dest), a zip or tar.gz archive, reproducibly - the same tree always gives the same bytes, so the
    same sha256. Entries are sorted by path, every entry has one fixed time (E(SOURCE_DATE_EPOCH) or
    O(source_date_epoch), else 1980-01-01 00:00 UTC), owner and group 0 without names, mode 0644 or 0755 for
    files (only the exec bit is kept), 0755 for directories; the gzip header has no file name and time 0.
    C(.git) directories are left out. A hardlinked file is stored as a file of its own.
  - The archive is then checked as hosts check a revision before unpacking it, and its AppSpec read back from it.
  - Writes C(<dest>.sha256) as C(sha256sum) does (C(sha256sum -c) checks it).
  - Optionally publishes both to O(publish) - a directory, an HTTP(S) URL (PUT) or C(s3://bucket/key) (boto3).
  - Returns the variables of C(playbooks/deploy.yml) that deploy exactly this archive (RV(deploy_vars)).
author:
  - appspec.deploy developers (@appspec-deploy)
extends_documentation_fragment:
  - appspec.deploy.attributes
attributes:
  action:
    description: Runs as an action plugin on the controller.
    support: full
  check_mode:
    support: full
    details:
      - Checks the revision and builds the archive in a temporary directory to tell whether O(dest) would change,
        then removes it; nothing is written or published.
  diff_mode:
    support: full
    details:
      - The sha256 of O(dest) before and after.
  idempotent:
    support: partial
    details:
      - O(dest) is left alone when it already holds the same archive. A O(publish) target is written every time.
options:
  src:
    description:
      - The revision directory, with its AppSpec at its root.
    type: path
    required: true
    version_added: 0.1.0
  dest:
    description:
      - The archive to write on the controller, for example C(dist/webapp.tar.gz). It may not be inside O(src).
      - Its name tells the format (C(.zip), C(.tar.gz), C(.tgz)) unless O(format) is set.
      - Default - C(dist/<name of src>.tar.gz) (or C(.zip) with O(format=zip)) in the current directory.
    type: path
    version_added: 0.1.0
  format:
    description:
      - The archive format. Default - from the name of O(dest).
    type: str
    choices: [tar.gz, zip]
    version_added: 0.1.0
  appspec_filename:
    description:
      - Another name of the AppSpec file in O(src); C(appspec.yml) and C(appspec.yaml) are tried after it.
    type: str
    version_added: 0.1.0
  source_date_epoch:
    description:
      - The time of every entry, in seconds since 1970 (never earlier than 1980-01-01, which zip cannot store).
      - Default - the environment variable E(SOURCE_DATE_EPOCH), else 1980-01-01 00:00 UTC.
    type: int
    version_added: 0.1.0
  publish:
    description:
      - Where to publish the archive and its C(.sha256) - a directory on the controller, an C(http://) or C(https://)
        URL (two PUT requests), or C(s3://bucket/key) (boto3 on the controller, with its usual credentials).
      - A URL or S3 key ending with C(/) gets the name of O(dest) appended.
    type: str
    version_added: 0.1.0
  headers:
    description:
      - Extra HTTP headers of the PUT requests, for example C(Authorization).
    type: dict
    default: {}
    version_added: 0.1.0
  s3_endpoint_url:
    description:
      - The endpoint of an S3-compatible store (MinIO, Ceph); default AWS.
    type: str
    version_added: 0.1.0
  s3_region:
    description:
      - The bucket's region; default boto3's configured one.
    type: str
    version_added: 0.1.0
notes:
  - The same directory packaged twice gives the same sha256 only when its content, its file names and the exec bits
    are the same; file times, owners and other permission bits do not matter.
seealso:
  - module: appspec.deploy.deployment_history
  - name: Push a revision (aws deploy push)
    description: What CodeDeploy's own command does for the same stage.
    link: https://docs.aws.amazon.com/codedeploy/latest/userguide/application-revisions-push.html
"""

EXAMPLES = r"""
- name: Build the revision archive
  appspec.deploy.package:
    src: "{{ playbook_dir }}/../examples/webapp"
    dest: /tmp/dist/webapp.tar.gz
  register: built

- name: Show how to deploy it
  ansible.builtin.debug:
    msg: "ansible-playbook playbooks/deploy.yml {{ built.deploy_command }}"

- name: Build a zip and publish it to S3
  appspec.deploy.package:
    src: /srv/build/shop
    dest: /srv/dist/shop.zip
    publish: s3://my-revisions/shop/
"""

RETURN = r"""
archive:
  description: The archive written (O(dest)).
  returned: success
  type: str
  sample: /tmp/dist/webapp.tar.gz
sha256_file:
  description: The checksum file written beside it.
  returned: success
  type: str
  sample: /tmp/dist/webapp.tar.gz.sha256
sha256:
  description: The SHA-256 of the archive.
  returned: success
  type: str
  sample: 0f3c4e6b0e1c0d4f8f1f4c6ab0bb3b43bde8aa1f4bd5f1ba7c0a5bd3c26e8d51
size:
  description: Its size in bytes.
  returned: success
  type: int
  sample: 2048
format:
  description: V(tar.gz) or V(zip).
  returned: success
  type: str
  sample: tar.gz
entries:
  description: How many files, directories and symlinks it holds.
  returned: success
  type: int
  sample: 12
published:
  description: Where it was published (C(location)) and, for a versioned S3 bucket, the object's C(version_id); null without O(publish).
  returned: success
  type: dict
  sample: {location: "s3://my-revisions/shop/shop.zip", version_id: null}
deploy_vars:
  description: The variables of C(playbooks/deploy.yml) that deploy exactly this archive.
  returned: success
  type: dict
  sample: {appspec_revision: /tmp/dist/webapp.tar.gz, appspec_revision_sha256: 0f3c4e6b0e1c0d4f8f1f4c6ab0bb3b43bde8aa1f4bd5f1ba7c0a5bd3c26e8d51}
deploy_command:
  description: The same as C(-e) arguments of C(ansible-playbook).
  returned: success
  type: str
  sample: -e appspec_revision=/tmp/dist/webapp.tar.gz -e appspec_revision_sha256=0f3c4e6b0e1c0d4f8f1f4c6ab0bb3b43bde8aa1f4bd5f1ba7c0a5bd3c26e8d51
problems:
  description: Every problem found in the revision, one sentence each.
  returned: failure
  type: list
  elements: str
  sample: ["appspec.yml: hooks.ApplicationStart[0].location 'scripts/start.sh': the script does not exist in the revision"]
"""
