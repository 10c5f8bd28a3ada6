"""Use the shared testinfra host fixture (podman hosts through ``podman exec``)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))
from testinfra_hosts import host  # noqa: E402,F401  pylint: disable=wrong-import-position,unused-import
