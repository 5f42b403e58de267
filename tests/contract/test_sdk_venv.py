"""The cached SDK environment: an unreachable package index skips (off CI only), anything else fails."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.contract.sdk_venv import SdkUnavailable, ensure_sdk_venv, may_skip


@pytest.mark.parametrize(
    ("reason", "ci", "skip"),
    [
        ("pip install failed: ERROR: No matching distribution found for mistralai==3.7.0", False, True),
        ("pip install failed: ERROR: Could not fetch URL https://index/simple/mistralai/", False, True),
        ("pip install failed: ERROR: No matching distribution found for mistralai==3.7.0", True, False),
        ("pip install failed: ERROR: Failed building wheel for something", False, False),
        ("the environment holds mistralai 2.5.0, not 3.7.0", False, False),
    ],
)
def test_only_an_unreachable_index_off_ci_may_skip(reason: str, ci: bool, skip: bool) -> None:
    assert may_skip(reason, ci=ci) is skip


def test_an_index_out_of_reach_is_a_one_line_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # No configuration file, no index, no local wheels: pip cannot find the package, as when offline.
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    with pytest.raises(SdkUnavailable) as caught:
        ensure_sdk_venv("3.7.0", cache=tmp_path)
    reason = str(caught.value)
    assert "\n" not in reason and reason.startswith("pip install mistralai==3.7.0 failed")
    assert may_skip(reason, ci=False) and not may_skip(reason, ci=True)
    assert not (tmp_path / "sdk-3.7.0" / ".installed").exists()
