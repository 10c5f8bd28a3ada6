"""Make the checkout importable as ansible_collections.appspec.deploy (scripts/bootstrap.sh links it)."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, ".cache", "collections"))
