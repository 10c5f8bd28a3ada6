"""Benchmark release directories: a 10,000-file revision with 1% of files changed.

Measures, for the second release: time and disk used with hardlinks of unchanged files
(link_unchanged, the default) against a full copy (link_unchanged=false), and the latency of
switching `current`. Writes the "releases" section of docs/benchmarks.md.
"""

from __future__ import annotations

import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, ".cache", "collections"))
sys.path.insert(0, os.path.join(REPO, "bench"))

from ansible_collections.appspec.deploy.plugins.module_utils._releases import ReleaseRoot  # noqa: E402
from report import write_section  # noqa: E402

FILES = int(os.environ.get("BENCH_FILES", "10000"))
CHANGED_FRACTION = 0.01
SWITCHES = 1000


def make_revision(path: str, seed: int, changed: set) -> None:
    rnd = random.Random(1234)
    for i in range(FILES):
        rel = os.path.join("d%02d" % (i % 100), "f%05d.txt" % i)
        full = os.path.join(path, rel)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        size = rnd.randint(200, 8000)
        body = (("%05d-" % i) * (size // 6 + 1))[:size]
        if i in changed:
            body = ("v%d-" % seed) + body[3:]
        with open(full, "w") as handle:
            handle.write(body)


def disk_kib(path: str) -> int:
    """Blocks used by ``path``, counting each inode once (du's own rule, inside this tree)."""
    out = subprocess.run(["du", "-sk", path], stdout=subprocess.PIPE, universal_newlines=True, check=True)
    return int(out.stdout.split()[0])


def new_release_cost(work: str, link_unchanged: bool) -> dict:
    root = os.path.join(work, "linked" if link_unchanged else "copied")
    rr = ReleaseRoot(root)
    first = os.path.join(work, "rev1")
    second = os.path.join(work, "rev2")
    rr.create_release("d-1", first)
    rr.switch("d-1")
    before = disk_kib(os.path.join(root, "releases"))
    os.sync()
    start = time.perf_counter()
    made = rr.create_release("d-2", second, link_unchanged=link_unchanged)
    elapsed = time.perf_counter() - start
    after = disk_kib(os.path.join(root, "releases"))
    return {"seconds": elapsed, "kib": after - before, "linked": made["linked"], "copied": made["copied"], "rr": rr}


def main() -> None:
    work = tempfile.mkdtemp(prefix="bench-releases-")
    try:
        changed = set(random.Random(7).sample(range(FILES), int(FILES * CHANGED_FRACTION)))
        make_revision(os.path.join(work, "rev1"), 1, set())
        make_revision(os.path.join(work, "rev2"), 2, changed)
        revision_kib = disk_kib(os.path.join(work, "rev2"))
        linked = new_release_cost(work, True)
        copied = new_release_cost(work, False)
        rr = linked["rr"]
        latencies = []
        for index in range(SWITCHES):
            target = "d-1" if index % 2 == 0 else "d-2"
            start = time.perf_counter()
            rr.switch(target)
            latencies.append(time.perf_counter() - start)
        latencies.sort()
        p50 = statistics.median(latencies) * 1000
        p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
        table = [
            "| new release (%d files, %d changed) | time | disk added | files hardlinked / copied |" % (FILES, len(changed)),
            "|---|---:|---:|---:|",
            "| `link_unchanged: true` (default) | %.2f s | %d KiB | %d / %d |" % (linked["seconds"], linked["kib"], linked["linked"], linked["copied"]),
            "| full copy (`link_unchanged: false`) | %.2f s | %d KiB | %d / %d |" % (copied["seconds"], copied["kib"], copied["linked"], copied["copied"]),
        ]
        text = "\n".join(
            [
                "Release directories (`bench/releases/run.sh`): a revision of %d files (%d KiB on disk), of which 1%% change "
                "between two releases. The time includes the unfinished marker, the release log and one `sync`." % (FILES, revision_kib),
                "",
                "\n".join(table),
                "",
                "Hardlinking uses %.1f%% of the disk of a full copy and %.0f%% of its time; an unchanged file is compared "
                "byte for byte with the previous release's (both are read), which is still cheaper than writing a copy."
                % (100.0 * float(linked["kib"]) / max(copied["kib"], 1), 100.0 * linked["seconds"] / max(copied["seconds"], 1e-9)),
                "",
                "Switching `current` (temp link + rename(2), then the release log update): median %.2f ms, p99 %.2f ms over %d switches."
                % (p50, p99, SWITCHES),
            ]
        )
        print(text)
        write_section("releases", text)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
