# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The deployment record's ``download_url`` (appspec_revision_download) against real servers on loopback.

Each kind of revision is resolved for real (http.server, the moto S3 server, a git repository, a
directory); a presigned S3 URL is then fetched and staged the way a host does it, without boto3.
"""

from __future__ import annotations

import os
import re
import sys
import tarfile
import urllib.parse

import pytest

from bundle_fixtures import REPO, git_repo, http_server, make_archive, moto_endpoint, s3  # noqa: F401 pylint: disable=unused-import

from ansible_collections.appspec.deploy.plugins.module_utils import _sources
from ansible_collections.appspec.deploy.plugins.module_utils._staging import StageOptions, stage
from ansible_collections.appspec.deploy.plugins.plugin_utils._deployment import DeploymentConfigError
from ansible_collections.appspec.deploy.plugins.plugin_utils._plan import EXAMPLE_REVISION, plan_deployment, settle_defaults
from ansible_collections.appspec.deploy.plugins.plugin_utils._revision import resolve_local, resolve_remote
from ansible_collections.appspec.deploy.plugins.plugin_utils._variables import VariableError, typed_options

APPSPEC = "version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n    - location: after.sh\n"


def files(marker):
    return {"appspec.yml": APPSPEC, "after.sh": ("#!/bin/sh\n", 0o755), "marker": marker}


def plan(revision, resolved, mode, **options):
    """The plan for two hosts, through the same steps as the deployment_plan action plugin."""
    given = dict(options, revision=revision, revision_download=mode, application_name="app",
                 deployment_config="CodeDeployDefault.AllAtOnce")
    return plan_deployment(settle_defaults(typed_options(given), ["web1", "web2"]), ["web1", "web2"], resolved)


@pytest.fixture
def cache(tmp_path):
    return str(tmp_path / "cache")


def test_an_http_revision_is_downloaded_by_hosts_from_its_own_url(http_server, cache):
    make_archive(http_server.root / "rev.tgz", files("1"))
    url = http_server.url("rev.tgz")
    resolved = resolve_remote("url", url, cache=cache)
    assert plan(url, resolved, "controller")["download_url"] is None
    record = plan(url, resolved, "host")
    assert record["download_url"] == url
    # The controller still resolved, validated and pinned it: hosts get the same sha256 and AppSpec.
    assert (record["sha256"], record["archive"]) == (resolved.sha256, resolved.path)
    assert record["appspec"]["appspec"]["hooks"]["AfterInstall"][0]["location"] == "after.sh"
    with pytest.raises(DeploymentConfigError, match="cannot send the HTTP headers"):
        plan(url, resolved, "host", headers={"Authorization": "Bearer t"})


def test_a_controller_path_and_a_git_revision_cannot_be_downloaded_by_hosts(tmp_path, git_repo, cache):
    directory = tmp_path / "app"
    directory.mkdir()
    for name, body in files("1").items():
        (directory / name).write_text(body[0] if isinstance(body, tuple) else body)
    local = resolve_local(str(directory), cache=cache)
    git = resolve_remote("git", git_repo.path, cache=cache)
    for revision, resolved in ((str(directory), local), (git_repo.path, git)):
        assert plan(revision, resolved, "controller")["download_url"] is None
        with pytest.raises(DeploymentConfigError, match="appspec_revision_download=host .* not a %s revision .*"
                                                        "Use appspec_revision_download=controller" % resolved.kind):
            plan(revision, resolved, "host")


def test_without_a_resolved_revision_hosts_download_nothing_and_the_mode_is_checked():
    assert plan("s3://b/k.zip", None, "host")["download_url"] is None  # rollback: nothing is looked at
    with pytest.raises(VariableError, match="appspec_revision_download must be one of controller, host, not 'hosts'"):
        plan("s3://b/k.zip", None, "hosts")


def test_an_s3_revision_is_presigned_pinned_to_its_version_and_fetched_without_boto3(tmp_path, s3, cache, monkeypatch):
    s3.create_bucket(Bucket="fleet")
    s3.put_bucket_versioning(Bucket="fleet", VersioningConfiguration={"Status": "Enabled"})
    one, sha = make_archive(tmp_path / "one.tar", files("1"))
    two = make_archive(tmp_path / "two.tar", files("2"))[0]
    version = s3.put_object(Bucket="fleet", Key="app/rev.tar", Body=open(one, "rb").read())["VersionId"]
    options = dict(s3_endpoint_url=s3.endpoint, s3_region="us-east-1")
    resolved = resolve_remote("s3", "s3://fleet/app/rev.tar", cache=cache, **options)
    assert resolved.sha256 == sha
    s3.put_object(Bucket="fleet", Key="app/rev.tar", Body=open(two, "rb").read())  # overwritten after the plan

    assert plan("s3://fleet/app/rev.tar", resolved, "controller", **options)["download_url"] is None
    url = plan("s3://fleet/app/rev.tar", resolved, "host", **options)["download_url"]
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    assert url.startswith(s3.endpoint + "/fleet/app/rev.tar?") and query["versionId"] == [version]
    assert query["X-Amz-Expires"] == ["86400"]

    # What a host does: the standard library only.
    monkeypatch.setitem(sys.modules, "boto3", None)
    monkeypatch.setitem(sys.modules, "botocore", None)
    root = tmp_path / "root"
    staged = stage(StageOptions(url, "d-HOSTDL001", revision_type="url", sha256=sha, deployment_group_id="g",
                                root_dir=str(root), appspec=resolved.appspec))
    assert staged["changed"] and staged["bytes_transferred"] == os.path.getsize(one)
    with tarfile.open(staged["bundle_path"]) as archive:
        assert archive.extractfile("marker").read() == b"1"  # the validated version, not the newer object
    # The signature is a credential: neither the result nor the host's record keeps it.
    signature = query["X-Amz-Signature"][0]
    assert signature not in str(staged)
    assert signature not in (root / "g" / "d-HOSTDL001" / ".bundle-info.json").read_text()


def test_a_presigned_url_of_other_bytes_is_refused_on_the_host(tmp_path, s3, cache):
    s3.create_bucket(Bucket="swapped")
    one, sha = make_archive(tmp_path / "one.tar", files("1"))
    s3.put_object(Bucket="swapped", Key="rev.tar", Body=open(one, "rb").read())
    options = dict(s3_endpoint_url=s3.endpoint, s3_region="us-east-1")
    resolved = resolve_remote("s3", "s3://swapped/rev.tar", cache=cache, **options)
    s3.put_object(Bucket="swapped", Key="rev.tar", Body=open(make_archive(tmp_path / "two.tar", files("2"))[0], "rb").read())
    url = plan("s3://swapped/rev.tar", resolved, "host", **options)["download_url"]  # unversioned: the latest bytes
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(_sources.SourceError, match="sha256 mismatch .* expected %s" % sha):
        _sources.fetch_url(url, str(dest), expected_sha256=sha)
    assert os.listdir(dest) == []


# --- the defaults of the bundled example (issue 10) ----------------------------------------------


def settle(hosts, **given):
    return settle_defaults(typed_options(given), hosts)


def test_the_bundled_example_is_the_default_revision_only_for_localhost_alone():
    example = settle(["localhost"])
    assert example["revision"] == EXAMPLE_REVISION == os.path.realpath(os.path.join(REPO, "examples", "webapp"))
    assert (example["application_name"], example["release_root"]) == ("webapp", "/opt/appspec-example")
    # A mistyped appspec_revision must not deploy the example to a fleet (or to localhost and a fleet).
    for hosts in (["web1", "web2"], ["localhost", "web1"]):
        with pytest.raises(DeploymentConfigError) as err:
            settle(hosts, application_name="nc-hello", hosts_pattern="all")
        assert "set appspec_revision" in str(err.value) and "localhost alone" in str(err.value)
    with pytest.raises(DeploymentConfigError, match="No host matches the target pattern 'web' "):
        settle([], hosts_pattern="web")
    assert settle(["localhost"], release_root="/srv/example")["release_root"] == "/srv/example"
    # The example given by its path is still the example: its name and release mode.
    given = settle(["web1"], revision=os.path.join(REPO, "examples", "webapp") + "/")
    assert (given["application_name"], given["release_root"]) == ("webapp", "/opt/appspec-example")


def test_an_application_name_is_required_but_for_the_bundled_example(tmp_path):
    """app-1.1.0.zip and app-1.2.0.zip are one application: its name is never guessed from the file name."""
    for resolve in (True, False):
        with pytest.raises(DeploymentConfigError) as err:
            settle(["localhost"], revision=str(tmp_path / "app-1.1.0.zip"), resolve=resolve)
        assert "set appspec_application_name" in str(err.value)
    named = settle(["web1"], revision=str(tmp_path / "app-1.1.0.zip"), application_name=" shop ")
    assert (named["application_name"], named["release_root"]) == ("shop", "")


def test_a_rollback_plan_needs_no_revision_but_an_application_name():
    """playbooks/rollback.yml (resolve false): the example's defaults only with no revision, on localhost alone."""
    alone = settle(["localhost"], resolve=False)
    assert (alone["application_name"], alone["release_root"]) == ("webapp", "/opt/appspec-example")
    with pytest.raises(DeploymentConfigError, match="set appspec_application_name"):
        settle(["web1", "web2"], resolve=False)
    fleet = settle(["web1", "web2"], resolve=False, application_name="shop")
    assert (fleet["revision"], fleet["application_name"], fleet["release_root"]) == ("", "shop", "")
    record = plan_deployment(fleet, ["web1", "web2"], None)
    assert (record["application_name"], record["revision"], record["archive"]) == ("shop", "", None)


def slice_plan(hosts, **given):
    """The plan one slice of a sliced AWX job makes for its own hosts (a rollback plan: nothing to resolve)."""
    given = dict(dict(application_name="shop", revision="s3://b/shop.zip", resolve=False), **given)
    return plan_deployment(settle(hosts, **given), hosts, None)


def test_the_slices_of_an_awx_job_make_one_deployment_id():
    """Issue 13.2: every slice gets the same extra vars, awx_workflow_job_id among them, and its own hosts."""
    awx = dict(workflow_job_id=42, job_template_id="7")  # AWX passes numbers; survey-style text is the same
    first, second = slice_plan(["web1", "web2"], **awx), slice_plan(["web3"], workflow_job_id="42", job_template_id=7)
    assert first["deployment_id"] == second["deployment_id"]
    assert first["rollback_deployment_id"] == second["rollback_deployment_id"] != first["deployment_id"]
    for record in (first, second):
        assert re.match(r"^d-[A-Z0-9]{9}$", record["deployment_id"]) and re.match(r"^d-[A-Z0-9]{9}$", record["rollback_deployment_id"])
    # Another workflow, another job template of the same workflow (a rollback after a deploy), another
    # application or group or revision launched by the same workflow: another deployment.
    others = [dict(awx, workflow_job_id=43), dict(awx, job_template_id=8), dict(awx, application_name="other"),
              dict(awx, deployment_group_name="blue"), dict(awx, revision="s3://b/shop-2.zip")]
    ids = {slice_plan(["web1"], **given)["deployment_id"] for given in others}
    assert len(ids) == len(others) and first["deployment_id"] not in ids


def test_an_explicit_deployment_id_wins_and_without_a_workflow_every_run_is_new():
    chosen = slice_plan(["web1"], deployment_id="d-CHOSEN001", workflow_job_id="42")
    assert chosen["deployment_id"] == "d-CHOSEN001" and chosen["rollback_deployment_id"] != "d-CHOSEN001"
    alone = [slice_plan(["web1"], workflow_job_id=value) for value in ("", None)]
    assert alone[0]["deployment_id"] != alone[1]["deployment_id"]


@pytest.mark.parametrize("variable, value", [
    ("root_dir", "deployment-root"), ("root_dir", "./root"), ("release_root", "srv/app"), ("release_root", "../app"),
])
def test_relative_roots_are_refused_naming_the_variable(variable, value):
    """Issue 14.3: a relative root wrote the deployment under the checkout's playbooks/."""
    with pytest.raises(DeploymentConfigError) as err:
        slice_plan(["web1"], **{variable: value})
    assert str(err.value).startswith("appspec_%s must be an absolute path on the hosts, not %r" % (variable, value))


def test_absolute_and_home_roots_are_taken():
    """The hosts' modules expand '~' (their options are of type path)."""
    record = slice_plan(["web1"], root_dir="~deploy/root", release_root="/srv/app")
    assert (record["root_dir"], record["release_root"]) == ("~deploy/root", "/srv/app")
    assert slice_plan(["web1"], release_root="")["release_root"] == ""  # in place


@pytest.mark.parametrize("value", [-1, "-1", 0, "0"])
def test_keep_releases_below_one_is_refused(value):
    """Issue 14.4: hosts refuse to keep no release at all; the plan refuses it first, naming the variable."""
    with pytest.raises(VariableError, match="appspec_keep_releases must be a whole number of 1 or more"):
        slice_plan(["web1"], keep_releases=value)
