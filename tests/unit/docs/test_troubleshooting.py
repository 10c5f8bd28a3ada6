# -*- coding: utf-8 -*-
# Copyright: appspec.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""docs/troubleshooting.md has an entry for every error message the code can give a user, and no other.

The messages are read from the source with ``ast`` (nothing is imported or run):

- the first argument of a call to ``DeployError`` or any class of ``plugins/`` derived from it (found in the
  source too), ``AnsibleActionFail`` and ``AnsibleError``;
- ``msg=`` of ``fail_json``;
- AppSpec problems: the message argument of ``ck.error(path, node, message)`` and ``_err(message, ...)``
  in ``plugins/plugin_utils/_appspec.py``, the problem given to ``_refuse(config, problem)`` (deployment
  configs), and ``error(message)`` where an error class is passed in as ``error``;
- the value assigned to a variable named ``msg`` or ``message`` in ``plugins/*_utils/`` (the hook runner
  builds a script's failure that way; action plugins keep success messages in them);
- ``fail_msg`` of ``ansible.builtin.assert`` and ``msg`` of ``ansible.builtin.fail`` in ``roles/*/tasks/*.yml``
  and ``playbooks/*.yml``.

Each message becomes a *template*: its constant text, with ``…`` where a value is filled in (``%s``, an
f-string field, ``{{ jinja }}``, a variable) and white space collapsed. A template with fewer than 10
letters of constant text (``"%s: %s" % (event, err)``: a message passed through) is not a message of its own.
Its *key* is the template cut to 60 characters at a word boundary. The rule the page states at its top:
every key appears in a quoted message line of the page (a line ``- `…``` in the "Messages" part), and every
quoted message line holds the key of a message of the code (no stale entries). A message that holds a
backtick is quoted with two: ``- ``…: `show stat` answered: …`` ``.

``python tests/unit/docs/test_troubleshooting.py`` prints the messages without an entry (and the stale ones).
"""

from __future__ import annotations

import ast
import glob
import itertools
import os
import re
import sys
import typing as t

import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
PAGE = os.path.join(REPO, "docs", "troubleshooting.md")
VAR = "…"
KEY_LENGTH = 60
MIN_LETTERS = 10
BASE_ERRORS = {"DeployError", "AnsibleActionFail", "AnsibleError"}
# Functions that take a message, and the position of the message among their arguments: _err(message, ...),
# _refuse(config, problem), and error(message) where ``error`` is an error class passed as an argument.
MESSAGE_FUNCTIONS = {"_err": 0, "_refuse": 1, "error": 0}
MESSAGE_METHODS = {"error": 2}  # ck.error(path, node, message) in _appspec.py
MESSAGE_VARIABLES = {"msg", "message"}
MESSAGE_VARIABLE_DIRS = ("plugins/module_utils/", "plugins/plugin_utils/")  # failures built in variables
_PERCENT = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(?:\*|\d+)?(?:\.(?:\*|\d+))?[sdrifgxXeEc%]")
_BRACES = re.compile(r"\{[^{}]*\}")
_JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.S)
_QUOTED = re.compile(r"^- (`+) ?(.+?) ?\1\s*$")  # a code span; ``double`` when the message holds a backtick


class Message(t.NamedTuple):
    template: str
    where: str  # file:line

    @property
    def key(self) -> str:
        return key_of(self.template)


def normalize(text: str) -> str:
    text = " ".join(text.split())
    while VAR + VAR in text:
        text = text.replace(VAR + VAR, VAR)
    return text.strip()


def key_of(template: str) -> str:
    if len(template) <= KEY_LENGTH:
        return template
    cut = template[:KEY_LENGTH]
    if template[KEY_LENGTH] != " " and " " in cut:
        cut = cut[:cut.rfind(" ")]
    return cut.rstrip()


def is_message(template: str) -> bool:
    return sum(char.isalpha() for char in template.replace(VAR, "")) >= MIN_LETTERS


def _percent(fmt: str) -> str:
    return _PERCENT.sub(lambda m: "%" if m.group(0) == "%%" else VAR, fmt)


def render(node: ast.AST) -> t.List[str]:
    """Every text ``node`` can make, with VAR for what is filled in at run time."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.JoinedStr):
        return ["".join(part.value if isinstance(part, ast.Constant) else VAR for part in node.values)]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
        return [_percent(text) for text in render(node.left)]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return [a + b for a, b in itertools.product(render(node.left), render(node.right))]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
        return [_BRACES.sub(VAR, text) for text in render(node.func.value)]
    if isinstance(node, ast.BoolOp):
        return [text for value in node.values for text in render(value)]
    if isinstance(node, ast.IfExp):
        return render(node.body) + render(node.orelse)
    return [VAR]


def _name(func: ast.AST) -> str:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def error_classes(sources: t.Mapping[str, str]) -> t.Set[str]:
    """DeployError and the classes derived from it in ``sources`` (any depth), plus Ansible's errors."""
    bases = {}  # type: t.Dict[str, t.Set[str]]
    for text in sources.values():
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef):
                bases[node.name] = {_name(base) for base in node.bases}
    found = set(BASE_ERRORS)
    while True:
        more = {name for name, parents in bases.items() if parents & found} - found
        if not more:
            return found
        found |= more


def python_messages(sources: t.Mapping[str, str]) -> t.List[Message]:
    """The messages of Python ``sources`` ({path: text})."""
    classes = error_classes(sources)
    found = []  # type: t.List[Message]
    for path, text in sorted(sources.items()):
        for node in ast.walk(ast.parse(text)):
            args = []  # type: t.List[ast.AST]
            if isinstance(node, ast.Call):
                name = _name(node.func)
                if name in classes and node.args:
                    args.append(node.args[0])
                elif name == "fail_json":
                    args.extend(kw.value for kw in node.keywords if kw.arg == "msg")
                else:
                    helpers = MESSAGE_FUNCTIONS if isinstance(node.func, ast.Name) else MESSAGE_METHODS
                    if name in helpers and len(node.args) > helpers[name]:
                        args.append(node.args[helpers[name]])
            elif path.startswith(MESSAGE_VARIABLE_DIRS) and isinstance(node, ast.Assign) and any(
                    isinstance(target, ast.Name) and target.id in MESSAGE_VARIABLES for target in node.targets):
                args.append(node.value)
            for arg in args:
                for text in render(arg):
                    template = normalize(text)
                    if is_message(template):
                        found.append(Message(template, "%s:%d" % (path, node.lineno)))
    return found


def _tasks(data: t.Any) -> t.Iterator[t.Dict[str, t.Any]]:
    """Every task of a task file or playbook, blocks and plays included."""
    if isinstance(data, list):
        for item in data:
            yield from _tasks(item)
    elif isinstance(data, dict):
        yield data
        for section in ("block", "rescue", "always", "tasks", "pre_tasks", "post_tasks", "handlers"):
            yield from _tasks(data.get(section))


def yaml_messages(sources: t.Mapping[str, str]) -> t.List[Message]:
    """fail_msg of assert and msg of fail in task files / playbooks ({path: text})."""
    found = []  # type: t.List[Message]
    for path, text in sorted(sources.items()):
        for task in _tasks(yaml.safe_load(text)):
            texts = []
            for action in ("ansible.builtin.assert", "assert"):
                if isinstance(task.get(action), dict):
                    texts.append(task[action].get("fail_msg"))
            for action in ("ansible.builtin.fail", "fail"):
                if isinstance(task.get(action), dict):
                    texts.append(task[action].get("msg"))
            for value in texts:
                if isinstance(value, str):
                    template = normalize(_JINJA.sub(VAR, value))
                    if is_message(template):
                        found.append(Message(template, "%s (%s)" % (path, task.get("name", "?"))))
    return found


def code_messages() -> t.List[Message]:
    python = {}
    for path in sorted(glob.glob(os.path.join(REPO, "plugins", "**", "*.py"), recursive=True)):
        with open(path, encoding="utf-8") as handle:
            python[os.path.relpath(path, REPO)] = handle.read()
    tasks = {}
    for path in sorted(glob.glob(os.path.join(REPO, "roles", "*", "tasks", "*.yml"))
                       + glob.glob(os.path.join(REPO, "playbooks", "*.yml"))):
        with open(path, encoding="utf-8") as handle:
            tasks[os.path.relpath(path, REPO)] = handle.read()
    return python_messages(python) + yaml_messages(tasks)


def quoted_messages(page: str) -> t.List[str]:
    """The quoted message lines of the page's "Messages" part (from its "## Messages" heading on)."""
    _head, sep, body = page.partition("\n## Messages\n")
    assert sep, "docs/troubleshooting.md has no '## Messages' part"
    return [normalize(m.group(2)) for m in (_QUOTED.match(line) for line in body.splitlines()) if m]


def missing(messages: t.Sequence[Message], quoted: t.Sequence[str]) -> t.List[Message]:
    return [m for m in messages if not any(m.key in q for q in quoted)]


def stale(messages: t.Sequence[Message], quoted: t.Sequence[str]) -> t.List[str]:
    keys = {m.key for m in messages}
    return [q for q in quoted if not any(key in q for key in keys)]


@pytest.fixture(scope="module")
def page() -> str:
    with open(PAGE, encoding="utf-8") as handle:
        return handle.read()


@pytest.fixture(scope="module")
def messages() -> t.List[Message]:
    return code_messages()


def test_every_message_of_the_code_has_an_entry(page, messages):
    assert len(messages) > 150, "the extraction found too few messages: %d" % len(messages)
    absent = missing(messages, quoted_messages(page))
    assert not absent, "messages without an entry in docs/troubleshooting.md:\n" + "\n".join(
        "  %s  (%s)" % (m.template, m.where) for m in absent)


def test_every_entry_is_a_message_of_the_code(page, messages):
    unknown = stale(messages, quoted_messages(page))
    assert not unknown, "entries of docs/troubleshooting.md that no code gives any more:\n" + "\n".join(unknown)


def test_the_page_states_the_rule(page):
    head = page.partition("\n## Messages\n")[0]
    assert "60 characters" in head and "…" in head


SYNTHETIC = '''
from ansible_collections.appspec.deploy.plugins.module_utils._errors import DeployError


class FancyError(DeployError):
    pass


class FancierError(FancyError):
    pass


def check(value, module, ck):
    if value is None:
        raise DeployError("the frobnicator %s is missing: install it first" % value)
    if value == 1:
        raise FancierError(f"widget {value} refused by the sprocket")
    if value == 2:
        module.fail_json(msg="cannot %s the gizmo, it is " % value + "upside down")
    ck.error("hooks", None, "the doohickey must be %s" % ("round" if value else "square"))
    msg = "%s: script at specified location: %s exploded" % (value, value)
    raise DeployError(str(value))  # passed through: no message of its own
'''

SYNTHETIC_TASKS = '''
- name: Check the thing
  ansible.builtin.assert:
    that: thing
    fail_msg: >-
      The thing {{ thing }} is
      not there at all.
- block:
    - name: Give up
      ansible.builtin.fail:
        msg: "{{ lifecycle_failure.msg }}"
'''


def test_a_new_message_without_an_entry_fails():
    """Messages added in code (a new error class included) are found, and the page must then cover them."""
    messages = python_messages({"plugins/module_utils/_new.py": SYNTHETIC}) + yaml_messages(
        {"roles/new/tasks/main.yml": SYNTHETIC_TASKS})
    assert sorted(m.template for m in messages) == sorted([
        "the frobnicator … is missing: install it first",
        "widget … refused by the sprocket",
        "cannot … the gizmo, it is upside down",
        "the doohickey must be …",
        "…: script at specified location: … exploded",
        "The thing … is not there at all.",
    ])
    quoted = ["the frobnicator … is missing: install it first", "widget … refused by the sprocket",
              "cannot … the gizmo, it is upside down", "the doohickey must be …",
              "…: script at specified location: … exploded"]
    assert [m.template for m in missing(messages, quoted)] == ["The thing … is not there at all."]
    assert not missing(messages, quoted + ["The thing … is not there at all."])
    assert stale(messages, quoted + ["an entry for a message that is gone"]) == ["an entry for a message that is gone"]


def test_the_real_page_misses_a_new_message(page):
    """The page as it is does not cover a message nobody has written an entry for."""
    new = python_messages({"plugins/module_utils/_new.py": SYNTHETIC})
    assert len(missing(new, quoted_messages(page))) == len(new)


def test_keys_are_cut_at_a_word_boundary():
    long = "the revision is not staged on this host and … does not exist anywhere at all"
    assert key_of(long) == "the revision is not staged on this host and … does not exist"
    assert key_of("short message") == "short message"


def test_quoted_lines_are_read():
    page = ("# T\n\n- `not in the Messages part`\n\n## Messages\n\n### A topic\n\n- `the disk   is full`\n"
            "- `` …: `show stat` answered: … ``\n- a plain bullet\n\nText with `code`.\n")
    assert quoted_messages(page) == ["the disk is full", "…: `show stat` answered: …"]


if __name__ == "__main__":
    with open(PAGE, encoding="utf-8") as page_file:
        QUOTED = quoted_messages(page_file.read()) if os.path.exists(PAGE) else []
    ALL = code_messages()
    for m in missing(ALL, QUOTED):
        print("MISSING  %s\n         %s" % (m.template, m.where))
    for q in stale(ALL, QUOTED):
        print("STALE    %s" % q)
    sys.exit(0)
