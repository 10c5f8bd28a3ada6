"""``ansible-playbook`` with a stopwatch on what an action does, for benchmarks.

Usage: ``python bench/ansible_timed.py <ansible-playbook arguments>`` with ``BENCH_PHASES=<file>``.
Every call of these ``ActionBase`` methods, in every worker, appends one JSON line to that file:

- ``module``: ``_execute_module`` (a module run; with pipelining one SSH command with the payload on
  stdin), which includes ``payload``;
- ``payload``: ``_configure_module`` (building the AnsiballZ payload on the controller; cached after
  the first task of a module in a run);
- ``upload``: ``_transfer_file`` (a file sent to the host: sftp/scp over SSH);
- ``mkdtemp``: ``_make_tmp_path`` (``echo ~`` and ``mkdir``: two SSH commands);
- ``chmod``: ``_fixup_perms2`` (a ``chmod``/``setfacl`` SSH command, or nothing);
- ``rm``: ``_remove_tmp_path``.

Nothing else changes: the playbook runs exactly as with ``ansible-playbook``.
"""

from __future__ import annotations

import json
import os
import sys
import time

from ansible.plugins.action import ActionBase

OUT = os.environ.get("BENCH_PHASES")


def _wrap(name, phase):
    original = getattr(ActionBase, name)

    def timed(self, *args, **kwargs):
        started = time.time()
        try:
            return original(self, *args, **kwargs)
        finally:
            if OUT:
                record = {"host": str(getattr(self._play_context, "remote_addr", "")),
                          "task": self._task.get_name(), "action": self._task.action, "phase": phase,
                          "start": started, "seconds": time.time() - started}
                with open(OUT, "a") as handle:
                    handle.write(json.dumps(record) + "\n")
    setattr(ActionBase, name, timed)


_wrap("_execute_module", "module")
_wrap("_configure_module", "payload")
_wrap("_transfer_file", "upload")
_wrap("_make_tmp_path", "mkdtemp")
_wrap("_fixup_perms2", "chmod")
_wrap("_remove_tmp_path", "rm")


if __name__ == "__main__":
    from ansible.cli.playbook import main
    sys.argv[0] = "ansible-playbook"
    main()
