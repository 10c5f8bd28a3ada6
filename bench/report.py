"""Write one benchmark's results into its own section of docs/benchmarks.md.

Each benchmark owns the text between ``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->``;
the rest of the file is left as it is, so benchmarks can run in any order.
"""

from __future__ import annotations

import datetime
import os
import platform
import re

BENCHMARKS_MD = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "benchmarks.md")


def machine_line() -> str:
    return "%s, %d cores, Python %s, measured %s" % (
        platform.platform(terse=True),
        os.cpu_count() or 0,
        platform.python_version(),
        datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    )


def write_section(name: str, markdown: str, path: str = BENCHMARKS_MD) -> None:
    """Replace (or append) the section ``name`` with ``markdown``."""
    start, end = "<!-- bench:%s -->" % name, "<!-- /bench:%s -->" % name
    block = "%s\n%s\n\n_%s_\n%s" % (start, markdown.strip(), machine_line(), end)
    text = open(path, encoding="utf-8").read() if os.path.exists(path) else "# Benchmarks\n"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
