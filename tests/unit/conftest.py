"""Make the checkout importable as ansible_collections.appspec.deploy (scripts/bootstrap.sh links it)."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, ".cache", "collections"))
# The playbook runs of the tests record their deployments in a history of their own (docs/pipeline.md), not the user's.
os.environ.setdefault("APPSPEC_DEPLOY_HISTORY_DIR", os.path.join(ROOT, ".cache", "test-history"))
