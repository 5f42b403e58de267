"""What a webhook's POST body is, for each format: the stored event as JSON, or a Slack incoming-webhook message.

Rendered at each attempt from the event the outbox stored, the same bytes every time (keys sorted), so a retry
carries the body the first attempt did.
"""

from __future__ import annotations

import json
from typing import Any

from store.webhook_models import WebhookFormat

__all__ = ["job_link", "render_body", "slack_text"]


def job_link(jobs_page_url: str | None, job_id: str) -> str | None:
    """The job's page on the jobs page, when its address is configured."""
    if not jobs_page_url:
        return None
    return f"{jobs_page_url.rstrip('/')}/jobs/{job_id}"


def slack_text(event: dict[str, Any], link: str | None) -> str:
    """One Slack mrkdwn message for a ``job.ended`` event (plain words, no emoji), or for a test event."""
    job = event.get("job")
    if not job:
        return f"dsimport: {event.get('type', 'event')} for webhook `{event.get('webhook', '?')}`"
    job_id = str(job.get("id", "?"))
    named = f"<{link}|{job_id}>" if link else f"`{job_id}`"
    lines = [f"dsimport: {job.get('kind', '?')} import {named} ended *{job.get('status', '?')}*"]
    details = [f"dataset `{job.get('dataset_id')}`"]
    if job.get("schedule"):
        details.append(f"schedule `{job['schedule']}`")
    if job.get("imported_count") is not None:
        details.append(_imported_phrase(job))
    lines.append(", ".join(details))
    problem = job.get("error") or (job.get("message") if job.get("status") != "COMPLETED" else None)
    if problem:
        lines.append(f"> {problem}")
    return "\n".join(lines)


def _imported_phrase(job: dict[str, Any]) -> str:
    """"12 records imported", or for a partial import "8 of 12 records imported (partial, 4 skipped by the API)"."""
    imported = job["imported_count"]
    if not job.get("partial"):
        return f"{imported} records imported"
    skipped = job.get("skipped_count")
    by_api = f", {skipped} skipped by the API" if skipped else ""
    return f"{imported} of {job.get('requested_count')} records imported (partial{by_api})"


def render_body(format: WebhookFormat, event: dict[str, Any], *, jobs_page_url: str | None = None) -> bytes:
    """The POST body of ``event`` in ``format``."""
    job = event.get("job") or {}
    link = job_link(jobs_page_url, str(job.get("id", ""))) if job.get("id") else None
    if format is WebhookFormat.SLACK:
        document: dict[str, Any] = {"text": slack_text(event, link)}
    else:
        document = {**event, "job": {**job, "url": link}} if job else dict(event)
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
