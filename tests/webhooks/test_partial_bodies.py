"""The webhook bodies of a partial import: the JSON event carries the counts as stored, Slack's text says partial."""

from __future__ import annotations

import json
from typing import Any

from notifications.bodies import render_body, slack_text
from store.webhook_models import WebhookFormat


def _event(**job: Any) -> dict[str, Any]:
    base = {"id": "j-1", "kind": "spans", "status": "COMPLETED", "dataset_id": "ds-1"}
    return {"id": "e-1", "type": "job.ended", "job": {**base, **job}}


def test_slack_says_how_many_of_how_many_for_a_partial_import() -> None:
    partial = _event(requested_count=12, imported_count=8, skipped_count=4, partial=True)
    assert "8 of 12 records imported (partial, 4 skipped by the API)" in slack_text(partial, None)
    whole = _event(requested_count=12, imported_count=12, skipped_count=0, partial=False)
    text = slack_text(whole, None)
    assert "12 records imported" in text and "partial" not in text


def test_the_json_body_keeps_the_counts_and_partial() -> None:
    event = _event(requested_count=3, imported_count=2, skipped_count=1, duplicates_skipped=5, sampled_out=7,
                   partial=True)
    body = json.loads(render_body(WebhookFormat.JSON, event))
    assert {key: body["job"][key] for key in ("requested_count", "imported_count", "skipped_count",
                                              "duplicates_skipped", "sampled_out", "partial")} == {
        "requested_count": 3, "imported_count": 2, "skipped_count": 1, "duplicates_skipped": 5, "sampled_out": 7,
        "partial": True,
    }
