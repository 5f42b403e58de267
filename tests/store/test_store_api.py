"""The package's public surface: what ``store`` and its modules declare actually exists."""

from __future__ import annotations

import importlib

import pytest

import store

MODULES = ["coltypes", "db", "errors", "jobs", "leases", "models", "state_machine"]
# Building blocks the modules export for each other and for tests, kept off the package's front page.
MODULE_ONLY = {
    "REMOTE_TERMINAL_STATUSES", "SQLITE_BUSY_TIMEOUT_MS", "UTCDateTime",
    "UniformSource", "lease_free", "new_event",
}  # fmt: skip


def test_package_all_is_unique_and_resolves() -> None:
    assert len(store.__all__) == len(set(store.__all__))
    for name in store.__all__:
        assert getattr(store, name) is not None, name


@pytest.mark.parametrize("module_name", MODULES)
def test_every_public_name_of_a_module_is_exported_by_the_package(module_name: str) -> None:
    module = importlib.import_module(f"store.{module_name}")
    declared = set(getattr(module, "__all__", []))
    for name in declared:
        assert hasattr(module, name), f"store.{module_name}.{name} declared but missing"
    assert declared - set(store.__all__) <= MODULE_ONLY
