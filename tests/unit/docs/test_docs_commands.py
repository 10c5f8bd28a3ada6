# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The shell commands of every docs/*.md page (and README.md) still work.

What is a command: every line of a fenced block labelled ``sh``, ``bash``, ``shell`` or ``console``, and of an
unlabelled block whose first word is a command (``make``, ``scripts/…``, ``.venv/bin/…``, ``ansible*``,
``pip``, ``molecule``, ``podman``, ``curl``…); other unlabelled blocks are layouts and logs. Lines ending in
``\\`` are joined; ``# comments`` are dropped; a leading ``$ `` is removed.

**Every command is checked statically**:

- a program under ``.venv/bin/`` or ``scripts/`` exists; ``make`` targets are in the Makefile;
- every repository path it names (``playbooks/…``, ``docs/…``, ``examples/…``, ``extensions/…``, ``roles/…``,
  ``plugins/…``, ``scripts/…``, ``inventory/…``, ``meta/…``, ``tests/…``) exists, and so does each Molecule
  scenario that ``scripts/molecule.sh`` or ``molecule -s`` names;
- every ``appspec.deploy.<name>`` is a module, role or callback of the collection;
- every ``-e`` variable named ``appspec_*`` / ``awx_*`` is one of ``plugins/plugin_utils/_variables.py``, and
  its value converts as ``deployment_plan`` converts it (``appspec_keep_releases=abc`` fails here); a
  deployment config is one ``_deployment.plan_health`` accepts.

**Commands that are safe and fast are run**:

- ``ansible-playbook …``: the playbooks it names, with ``--syntax-check`` instead of a real run and an inventory
  holding the hosts and groups the docs use (``web1``, ``web2``, group ``web``); all of them in one run, as
  the ``-e`` values are checked statically;
- ``ansible-doc …``, anything with ``--help`` / ``--version``;
- ``ansible localhost -m appspec.deploy.appspec_info …`` (read only).

A run must exit 0 and print no ``[WARNING]`` / ``ERROR``. The others (a deployment, ``make``, Molecule, a
command for a host of your own) are checked statically only. getting-started.md is also run for real, in
order, by the ``ssh_become`` Molecule scenario.

**Links**: every relative link of the pages names a file that exists, and its ``#anchor`` a heading there.

**The marker.** A block that must not be run even though it looks runnable is preceded (on the line before
its opening fence) by ``<!-- not-runnable: <why> -->``; it is still checked statically.
"""

from __future__ import annotations

import concurrent.futures
import glob
import json
import os
import re
import shlex
import subprocess
import sys
import typing as t

import pytest

from ansible_collections.appspec.deploy.plugins.plugin_utils import _deployment, _variables

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BIN = os.path.dirname(sys.executable)
PAGES = sorted(glob.glob(os.path.join(REPO, "docs", "*.md"))) + [os.path.join(REPO, "README.md")]
SHELL_LANGS = {"sh", "bash", "shell", "console"}
COMMAND_WORDS = {"make", "pip", "pip3", "python", "python3", "ansible", "ansible-playbook", "ansible-doc",
                 "ansible-galaxy", "ansible-builder", "ansible-runner", "ansible-lint", "ansible-test",
                 "ansible-inventory", "molecule", "podman", "curl", "cd", "ls", "cat", "sudo", "git", "pytest"}
REPO_DIRS = ("playbooks", "docs", "examples", "extensions", "roles", "plugins", "scripts", "inventory", "meta",
             "tests", "bench", "changelogs", "collections")
MARKER = re.compile(r"^\s*<!--\s*not-runnable:\s*\S.*-->\s*$")
FENCE = re.compile(r"^(\s*)(```+)([\w-]*)\s*$")
INVENTORY = """\
all:
  children:
    web:
      hosts:
        web1: {}
        web2: {}
"""


class Command(t.NamedTuple):
    page: str
    line: int
    text: str
    runnable: bool  # False: in a block marked not-runnable

    @property
    def where(self) -> str:
        return "%s:%d" % (os.path.relpath(self.page, REPO), self.line)

    @property
    def argv(self) -> t.List[str]:
        words = shlex.split(self.text, comments=True)
        while words and re.match(r"^[A-Z_][A-Z0-9_]*=", words[0]):  # VAR=value prefixes
            words.pop(0)
        return words


def _is_command_block(lang: str, body: t.Sequence[str]) -> bool:
    if lang in SHELL_LANGS:
        return True
    if lang:
        return False
    first = next((line.strip() for line in body if line.strip()), "")
    first = first[2:] if first.startswith("$ ") else first
    word = first.split(" ", 1)[0]
    word = word if "=" not in word else (first.split(" ")[1] if " " in first else "")
    return word in COMMAND_WORDS or word.startswith(("scripts/", ".venv/bin/", "./"))


def commands_of(page: str, text: str) -> t.List[Command]:
    lines = text.split("\n")
    found = []  # type: t.List[Command]
    index = 0
    while index < len(lines):
        match = FENCE.match(lines[index])
        if not match:
            index += 1
            continue
        fence, lang = match.group(2), match.group(3)
        end = index + 1
        while end < len(lines) and not re.match(r"^\s*" + fence + r"\s*$", lines[end]):
            end += 1
        body = lines[index + 1:end]
        before = next((lines[k] for k in range(index - 1, -1, -1) if lines[k].strip()), "")
        if _is_command_block(lang, body):
            runnable = not MARKER.match(before)
            pending, start = "", 0
            for offset, raw in enumerate(body):
                line = raw.strip()
                if line.startswith("$ "):
                    line = line[2:]
                if not pending:
                    start = index + 2 + offset
                if line.endswith("\\"):
                    pending += line[:-1].rstrip() + " "
                    continue
                full = (pending + line).strip()
                pending = ""
                if full and not full.startswith("#"):
                    found.append(Command(page, start, full, runnable))
        index = end + 1
    return found


def all_commands() -> t.List[Command]:
    found = []  # type: t.List[Command]
    for page in PAGES:
        with open(page, encoding="utf-8") as handle:
            found.extend(commands_of(page, handle.read()))
    return found


COMMANDS = all_commands()


def _collection_names() -> t.Set[str]:
    names = {os.path.splitext(os.path.basename(p))[0] for p in glob.glob(os.path.join(REPO, "plugins", "modules", "*.py"))}
    names |= {os.path.splitext(os.path.basename(p))[0] for p in glob.glob(os.path.join(REPO, "plugins", "callback", "*.py"))}
    names |= {os.path.basename(p) for p in glob.glob(os.path.join(REPO, "roles", "*"))}
    return names


def _make_targets() -> t.Set[str]:
    with open(os.path.join(REPO, "Makefile"), encoding="utf-8") as handle:
        return {m.group(1) for m in re.finditer(r"^([\w.-]+)\s*:", handle.read(), re.M)}


def _extra_vars(argv: t.Sequence[str]) -> t.Dict[str, str]:
    """The ``-e`` / ``--extra-vars`` of a command as {name: value text}."""
    found = {}  # type: t.Dict[str, str]
    for index, word in enumerate(argv):
        value = None
        if word in ("-e", "--extra-vars") and index + 1 < len(argv):
            value = argv[index + 1]
        elif word.startswith("--extra-vars="):
            value = word.split("=", 1)[1]
        if value is None or value.startswith("@"):
            continue
        if value.lstrip().startswith("{"):
            found.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in json.loads(value).items()})
            continue
        for pair in shlex.split(value):
            name, sep, text = pair.partition("=")
            if sep:
                found[name] = text
    return found


def static_problems(command: Command) -> t.List[str]:
    """What is wrong with ``command`` without running it."""
    problems = []  # type: t.List[str]
    argv = command.argv
    if not argv:
        return problems
    program = argv[0]
    if program.startswith(".venv/bin/") and not os.path.exists(os.path.join(REPO, program)):
        problems.append("%s does not exist (scripts/bootstrap.sh makes .venv)" % program)
    if program.startswith("scripts/") and not os.access(os.path.join(REPO, program), os.X_OK):
        problems.append("%s is not an executable script of the repository" % program)
    if program == "make":
        unknown = [word for word in argv[1:] if not word.startswith("-") and "=" not in word
                   and word not in _make_targets()]
        problems.extend("make target %s is not in the Makefile" % word for word in unknown)
    words = list(argv)
    for word in argv:  # the values of key=value pairs (-a "path=examples/webapp") and of -e pairs
        if "=" in word:
            words.extend(part.partition("=")[2] for part in shlex.split(word) if "=" in part)
    for word in words:
        if word.split("/", 1)[0] in REPO_DIRS and "/" in word and not re.search(r"[<>*$]|\.\.\.", word):
            if not os.path.exists(os.path.join(REPO, word.rstrip(":"))):
                problems.append("path %s does not exist in the repository" % word)
    scenarios = []  # type: t.List[str]
    if program.endswith("scripts/molecule.sh"):
        scenarios = [word for word in argv[1:] if not word.startswith("-")]
    if "molecule" in os.path.basename(program) and "-s" in argv:
        scenarios.append(argv[argv.index("-s") + 1])
    problems.extend("Molecule scenario %s does not exist" % name for name in scenarios
                    if not os.path.isdir(os.path.join(REPO, "extensions", "molecule", name)))
    names = _collection_names()
    for match in re.finditer(r"appspec\.deploy\.([a-z_]+)", command.text):
        if match.group(1) not in names:
            problems.append("appspec.deploy.%s is no module, role or callback of the collection" % match.group(1))
    for line_problem in variable_problems(_extra_vars(argv)):
        problems.append(line_problem)
    return problems


def variable_problems(extra: t.Mapping[str, str]) -> t.List[str]:
    problems = []  # type: t.List[str]
    options = {}
    for name, value in extra.items():
        if not name.startswith(("appspec_", "awx_")):
            continue
        variable = _variables.VARIABLES.get(name)
        if variable is None and name not in _variables.SET_BY_PLAYBOOKS:
            problems.append("-e %s is not a variable of plugins/plugin_utils/_variables.py" % name)
        elif variable is not None and variable.option:
            options[variable.option] = value
    try:
        typed = _variables.typed_options(options)
    except _variables.VariableError as err:
        problems.append(str(err))
        return problems
    if "appspec_deployment_config" in extra:
        try:
            _deployment.plan_health(typed["deployment_config"], 10)
        except _deployment.DeploymentConfigError as err:
            problems.append(str(err))
    return problems


def run_argv(command: Command, inventory: str) -> t.Optional[t.List[str]]:
    """The argv to run for ``command``, or None when it is only checked statically."""
    argv = command.argv
    if not command.runnable or not argv:
        return None
    program = os.path.basename(argv[0])
    if not argv[0].startswith((".venv/bin/", "ansible")) or not program.startswith("ansible"):
        return None
    if "--help" in argv or "--version" in argv or program == "ansible-doc":
        return [os.path.join(BIN, program)] + argv[1:]
    if program == "ansible-playbook":
        # The playbooks it names, syntax-checked once each; its -e values are checked statically (above).
        values = {index + 1 for index, word in enumerate(argv) if word.startswith("-") and "=" not in word
                  and word not in ("--check", "-C", "--diff", "-D", "-b", "--become", "-v", "-vv", "-vvv")}
        playbooks = [word for index, word in enumerate(argv[1:], 1) if index not in values and word.endswith((".yml", ".yaml"))]
        return [os.path.join(BIN, program), "-i", inventory] + playbooks + ["--syntax-check"] if playbooks else None
    if program == "ansible" and len(argv) > 1 and argv[1] == "localhost" and "appspec.deploy.appspec_info" in argv:
        return [os.path.join(BIN, program)] + argv[1:]
    return None


def _env() -> t.Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(ANSIBLE_NOCOLOR="1", PAGER="cat", ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"),
               PATH=BIN + os.pathsep + env.get("PATH", ""))
    return env


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> t.Tuple[str, t.Dict[t.Tuple[str, ...], subprocess.CompletedProcess]]:
    """The inventory, and each distinct runnable command run once (two at a time: the machine is shared)."""
    inventory = str(tmp_path_factory.mktemp("docs") / "inventory.yml")
    with open(inventory, "w", encoding="utf-8") as handle:
        handle.write(INVENTORY)
    argvs = {}  # type: t.Dict[t.Tuple[str, ...], Command]
    for command in COMMANDS:
        argv = run_argv(command, inventory)
        if argv:
            argvs.setdefault(tuple(argv), command)
    # Every syntax check in one ansible-playbook run (it takes several playbooks): a second each otherwise.
    checks = [argv for argv in argvs if argv[-1] == "--syntax-check"]
    playbooks = sorted({word for argv in checks for word in argv[3:-1]})
    together = tuple(checks[0][:3]) + tuple(playbooks) + ("--syntax-check",) if checks else None

    def run(argv: t.Tuple[str, ...]) -> subprocess.CompletedProcess:
        return subprocess.run(list(argv), capture_output=True, text=True, cwd=REPO, env=_env(), timeout=300, check=False)

    others = [argv for argv in argvs if argv not in checks] + ([together] if together else [])
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        results = dict(zip(others, pool.map(run, others)))
    return inventory, {argv: results[together if argv in checks else argv] for argv in argvs}


def test_commands_are_found():
    pages = {os.path.basename(c.page) for c in COMMANDS}
    assert {"getting-started.md", "migrating-from-codedeploy-agent.md", "migrating-from-ansistrano.md",
            "migrating-from-deploy-helper.md", "deployments.md", "testing.md"} <= pages
    assert any(not c.runnable for c in COMMANDS), "no block carries the not-runnable marker"


@pytest.mark.parametrize("command", COMMANDS, ids=[c.where for c in COMMANDS])
def test_command_is_right_statically(command):
    problems = static_problems(command)
    assert not problems, "%s: %s\n  %s" % (command.where, command.text, "\n  ".join(problems))


RUNNABLE = [c for c in COMMANDS if run_argv(c, "INVENTORY")]


def test_some_commands_are_run():
    kinds = {os.path.basename(c.argv[0]) for c in RUNNABLE}
    assert {"ansible-playbook", "ansible"} <= kinds, kinds


@pytest.mark.parametrize("command", RUNNABLE, ids=[c.where for c in RUNNABLE])
def test_command_runs(runs, command):
    inventory, results = runs
    proc = results[tuple(run_argv(command, inventory))]
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, "%s: %s\n%s" % (command.where, command.text, output[-3000:])
    assert "[WARNING]" not in output and "ERROR" not in output, "%s: %s\n%s" % (command.where, command.text, output[-3000:])


# --- Links between the pages ---------------------------------------------------------------------------------

LINK = re.compile(r"\]\(([^)\s]+)\)")


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(path: str) -> t.Set[str]:
    with open(path, encoding="utf-8") as handle:
        text = re.sub(r"^\s*```.*?^\s*```", "", handle.read(), flags=re.S | re.M)  # no headings in code blocks
    return {_slug(m.group(1)) for m in re.finditer(r"^#+ (.+)$", text, re.M)}


def link_problems(page: str, text: str) -> t.List[str]:
    """Relative links of ``page`` whose file, or whose #anchor in it, does not exist."""
    problems = []  # type: t.List[str]
    for match in LINK.finditer(text):
        target = match.group(1)
        if re.match(r"^[a-z]+:", target) or target.startswith("<"):
            continue  # http(s)://, mailto:
        path, _sep, anchor = target.partition("#")
        full = os.path.normpath(os.path.join(os.path.dirname(page), path)) if path else page
        if not os.path.exists(full):
            problems.append("%s: the link %s names no file" % (os.path.relpath(page, REPO), target))
        elif anchor and full.endswith(".md") and anchor not in _anchors(full):
            problems.append("%s: the link %s names no heading of %s" % (os.path.relpath(page, REPO), target,
                                                                        os.path.relpath(full, REPO)))
    return problems


@pytest.mark.parametrize("page", PAGES, ids=[os.path.relpath(p, REPO) for p in PAGES])
def test_links_resolve(page):
    with open(page, encoding="utf-8") as handle:
        problems = link_problems(page, handle.read())
    assert not problems, "\n".join(problems)


def test_a_wrong_link_is_found():
    page = os.path.join(REPO, "docs", "getting-started.md")
    text = "[a](variables.md#role-variables) [b](nothere.md) [c](hooks.md#no-such-heading) [d](https://x.org/y)"
    assert link_problems(page, text) == ["docs/getting-started.md: the link nothere.md names no file",
                                         "docs/getting-started.md: the link hooks.md#no-such-heading names no "
                                         "heading of docs/hooks.md"]


# --- The checks themselves fail on wrong commands -------------------------------------------------------------

BAD_PAGE = """
Text.

```sh
.venv/bin/ansible-playbook -i inventory.yml playbooks/deploy.yml -e appspec_revison=x.zip
.venv/bin/ansible-playbook playbooks/nothere.yml -e appspec_keep_releases=abc
.venv/bin/ansible-playbook playbooks/deploy.yml -e appspec_deployment_config=HOST_COUNT:many
.venv/bin/ansible-doc appspec.deploy.no_such_module
scripts/molecule.sh no_such_scenario
make no-such-target
cat docs/no-such-page.md
```

<!-- not-runnable: a host of yours -->
```sh
.venv/bin/ansible-playbook -i inventory.yml playbooks/rollback.yml \\
    -e appspec_application_name=myapp
```

```
releases/
  d-XXXXXXXXX/
```
"""


def test_the_static_checks_find_wrong_commands():
    found = commands_of("docs/bad.md", BAD_PAGE)
    assert [c.runnable for c in found] == [True] * 7 + [False]
    assert found[-1].text == ".venv/bin/ansible-playbook -i inventory.yml playbooks/rollback.yml -e appspec_application_name=myapp"
    problems = [static_problems(c) for c in found]
    assert "-e appspec_revison is not a variable" in problems[0][0]
    assert any("playbooks/nothere.yml does not exist" in p for p in problems[1])
    assert any("appspec_keep_releases must be a whole number" in p for p in problems[1])
    assert any("HOST_COUNT" in p for p in problems[2])
    assert problems[3] == ["appspec.deploy.no_such_module is no module, role or callback of the collection"]
    assert problems[4] == ["Molecule scenario no_such_scenario does not exist"]
    assert problems[5] == ["make target no-such-target is not in the Makefile"]
    assert problems[6] == ["path docs/no-such-page.md does not exist in the repository"]
    assert problems[7] == []
    assert run_argv(found[7], "INV") is None  # marked: never run
    assert run_argv(found[0], "INV")[1:] == ["-i", "INV", "playbooks/deploy.yml", "--syntax-check"]


def test_a_broken_playbook_fails_its_run(tmp_path):
    """The syntax check really runs: a playbook that does not parse fails."""
    broken = tmp_path / "broken.yml"
    broken.write_text("- hosts: all\n  tasks:\n    - name: x\n      no_such_module_at_all: {}\n")
    proc = subprocess.run([os.path.join(BIN, "ansible-playbook"), str(broken), "--syntax-check"], capture_output=True,
                          text=True, cwd=REPO, env=_env(), timeout=120, check=False)
    assert proc.returncode != 0
