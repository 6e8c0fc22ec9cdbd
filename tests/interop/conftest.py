"""Interop tests with third-party clients run by `make interop` (RUN_INTEROP=1), not by `make test`."""
import os

if os.environ.get("RUN_INTEROP") != "1":
    collect_ignore_glob = ["test_*.py"]
