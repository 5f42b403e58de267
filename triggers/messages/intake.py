"""From a message to a job or a dead letter: the one path the stream consumer, the Celery task and a retry share.

A valid message becomes a job through :func:`jobs.request_import.request_import`, keyed ``message:<id>``, so the same
message twice (a redelivery, a producer retrying, the stream and the task both used) finds the first job. An
invalid one becomes a row in ``dead_letters`` with its raw body and reason. Either way the row is committed before
:meth:`Intake.accept` returns, which is what lets the stream consumer acknowledge an entry only afterwards.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from jobs.request_import import (
    ImportRequest,
    ImportRequested,
    InvalidImportRequest,
    check_idempotency_key,
    request_import,
    request_imports,
    validate_params,
)
from store import guarantees
from store.dead_letters import decode_body, mark_retried, record_dead_letter, require_dead_letter
from store.models import ImportKind
from triggers.messages.message_model import (
    DEFAULT_MAX_BYTES,
    ImportRequestMessage,
    InvalidMessage,
    idempotency_key,
    parse_message,
)

__all__ = [
    "TASK_SOURCE",
    "AlreadyRetried",
    "Intake",
    "IntakeEntry",
    "IntakeResult",
    "Outcome",
    "kept_body",
]

TASK_SOURCE = "task:dsimport.request_import"
"""What the ``stream`` column of a dead letter says for a request that came through the Celery task."""


class Outcome(StrEnum):
    """What became of one message."""

    CREATED = "created"
    """A new job was written."""
    DUPLICATE = "duplicate"
    """A job with this message id existed already; nothing new was started."""
    DEAD_LETTERED = "dead_lettered"
    """The message was refused and kept in the dead letters."""


@dataclass(frozen=True)
class IntakeResult:
    outcome: Outcome
    message_id: str | None = None
    job_id: str | None = None
    job_status: str | None = None
    dead_letter_id: int | None = None
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "outcome": str(self.outcome),
            "message_id": self.message_id,
            "job_id": self.job_id,
            "job_status": self.job_status,
            "dead_letter_id": self.dead_letter_id,
            "reason": self.reason,
        }


class AlreadyRetried(InvalidImportRequest):
    """Raised when a dead letter that was already re-submitted is retried again."""

    def __init__(self, dead_letter_id: int, job_id: str | None) -> None:
        self.dead_letter_id = dead_letter_id
        self.job_id = job_id
        super().__init__(f"dead letter {dead_letter_id} was already retried (job {job_id})")


@dataclass(frozen=True)
class IntakeEntry:
    """One message for :meth:`Intake.accept_many`: its body, its stream entry id, what to keep if it has no body."""

    body: bytes | None
    entry_id: str | None
    fallback_body: bytes = b""


def _created(message: ImportRequestMessage, requested: ImportRequested) -> IntakeResult:
    return IntakeResult(
        outcome=Outcome.CREATED if requested.created else Outcome.DUPLICATE,
        message_id=message.id,
        job_id=requested.job_id,
        job_status=requested.status,
    )


def kept_body(body: bytes | None, *, fallback: bytes, max_bytes: int) -> bytes:
    """What a dead letter keeps of a body: the body (``fallback`` when there is none), cut at ``max_bytes``."""
    # The fallback (an entry's other fields) is the producer's too: as unbounded as a body, and cut the same.
    return (fallback if body is None else body)[:max_bytes]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _printed(payload: Any) -> bytes:
    """What a dead letter keeps of a payload that is not JSON: its repr, or its type when even that fails."""
    try:
        return repr(payload).encode("utf-8", errors="backslashreplace")
    except (ValueError, RecursionError):  # an int of 4,300+ digits, a structure nested thousands deep
        return f"<{type(payload).__name__} that cannot be printed>".encode()


@dataclass(frozen=True)
class Intake:
    """Turns messages into jobs or dead letters; ``send`` hands a new job's id to the submit task."""

    session_factory: sessionmaker[Session]
    send: Callable[[str], None]
    deadline_s: float
    # Hands a batch of new jobs to the submit task in one message (the stream consumer's batches); without it each
    # job is sent alone through ``send``.
    send_batch: Callable[[list[str]], None] | None = None
    max_bytes: int = DEFAULT_MAX_BYTES
    now: Callable[[], datetime] = _utcnow

    def accept(
        self, body: bytes | None, *, source: str, entry_id: str | None, fallback_body: bytes = b""
    ) -> IntakeResult:
        """Validate ``body`` and write its job, or its dead letter; committed either way.

        ``source`` is the job's origin and the dead letter's ``stream``; ``entry_id`` makes a redelivered
        entry's dead letter a no-op. ``fallback_body`` is kept when there is no body at all.
        """
        try:
            request = parse_message(body, max_bytes=self.max_bytes)
            return self.create(request, origin=source)
        except InvalidImportRequest as exc:
            return self._refuse(IntakeEntry(body, entry_id, fallback_body), exc, source=source)

    def accept_many(self, entries: Sequence[IntakeEntry], *, source: str) -> list[IntakeResult]:
        """:meth:`accept` for several entries, one result each in order: the jobs of the valid ones are written
        in one transaction and handed to ``send_batch`` in one call; each invalid one gets its dead letter."""
        results: dict[int, IntakeResult] = {}
        valid: list[tuple[int, ImportRequestMessage, ImportRequest]] = []
        for index, entry in enumerate(entries):
            try:
                message = parse_message(entry.body, max_bytes=self.max_bytes)
                request = self._request_of(message, origin=source)
                # Checked here so that one bad request is dead-lettered alone instead of failing the batch.
                validate_params(request.kind, request.params)
                if request.idempotency_key is not None:
                    check_idempotency_key(request.idempotency_key)
            except InvalidImportRequest as exc:
                results[index] = self._refuse(entry, exc, source=source)
                continue
            valid.append((index, message, request))
        if valid:
            requested = request_imports(
                self.session_factory,
                [request for _, _, request in valid],
                now=self.now(),
                deadline_s=self.deadline_s,
                send=self._send_many,
            )
            for (index, message, _), done in zip(valid, requested, strict=True):
                results[index] = _created(message, done)
        return [results[index] for index in range(len(entries))]

    def _send_many(self, job_ids: list[str]) -> None:
        if self.send_batch is not None:
            self.send_batch(job_ids)
        else:
            for job_id in job_ids:
                self.send(job_id)

    def _refuse(self, entry: IntakeEntry, exc: InvalidImportRequest, *, source: str) -> IntakeResult:
        message_id = exc.message_id if isinstance(exc, InvalidMessage) else None
        reason = exc.reason if isinstance(exc, InvalidMessage) else f"refused: {exc}"
        body = entry.body
        return self.dead_letter(
            kept_body(body, fallback=entry.fallback_body, max_bytes=self.max_bytes),
            body_size=len(body) if body is not None else len(entry.fallback_body),
            reason=reason,
            source=source,
            entry_id=entry.entry_id,
            message_id=message_id,
        )

    def accept_payload(self, payload: Any, *, source: str, entry_id: str | None) -> IntakeResult:
        """Like :meth:`accept` for a value already decoded from JSON (what the Celery task receives)."""
        try:
            text = json.dumps(payload, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError, RecursionError) as exc:
            # The first clause only: Python's message about a long integer goes on to suggest raising a limit.
            reason = "nested too deeply" if isinstance(exc, RecursionError) else re.split("[:;]", str(exc))[0]
            raw = _printed(payload)
            return self.dead_letter(
                raw[: self.max_bytes],
                body_size=len(raw),
                reason=f"invalid JSON: {reason}",
                source=source,
                entry_id=entry_id,
                message_id=None,
            )
        try:
            body = text.encode("utf-8")
        except UnicodeEncodeError:
            # A lone surrogate: keep it escaped so the body is storable; validation then refuses the string.
            body = json.dumps(payload, allow_nan=False).encode("ascii")
        return self.accept(body, source=source, entry_id=entry_id)

    def create(self, request: ImportRequestMessage, *, origin: str) -> IntakeResult:
        """Write (or find) the job of a valid request and send it to be submitted."""
        wanted = self._request_of(request, origin=origin)
        requested = request_import(
            self.session_factory,
            kind=wanted.kind,
            dataset_id=wanted.dataset_id,
            params=wanted.params,
            origin=origin,
            now=self.now(),
            deadline_s=self.deadline_s,
            send=self.send,
            idempotency_key=wanted.idempotency_key,
            skip_existing=wanted.skip_existing,
        )
        return _created(request, requested)

    @staticmethod
    def _request_of(message: ImportRequestMessage, *, origin: str) -> ImportRequest:
        return ImportRequest(
            kind=ImportKind(message.kind),
            dataset_id=str(message.dataset_id),
            params=message.params(),
            origin=origin,
            # Without the message's own key (a mutation run only) each delivery gets a fresh one: a duplicate job.
            idempotency_key=idempotency_key(message.id) if guarantees.enabled("message-key") else None,
            skip_existing=message.skip_existing,
        )

    def dead_letter(
        self,
        body: bytes,
        *,
        body_size: int,
        reason: str,
        source: str,
        entry_id: str | None,
        message_id: str | None,
    ) -> IntakeResult:
        """Keep a refused message (once per ``(source, entry_id)``)."""
        with self.session_factory() as session:
            letter, _created = record_dead_letter(
                session,
                stream=source,
                entry_id=entry_id,
                body=body,
                body_size=body_size,
                reason=reason,
                message_id=message_id,
                now=self.now(),
            )
            result = IntakeResult(
                outcome=Outcome.DEAD_LETTERED,
                message_id=letter.message_id,
                dead_letter_id=letter.id,
                reason=letter.reason,
            )
            session.commit()
        return result

    def retry(self, dead_letter_id: int, *, body: bytes | None = None) -> IntakeResult:
        """Re-submit a dead letter: its own body, or ``body`` (a corrected one), validated again.

        On success the job is written (or found, for a message id already imported) and the dead letter is
        marked retried. Nothing changes on failure.

        :raises DeadLetterNotFoundError: no such dead letter.
        :raises AlreadyRetried: it was re-submitted before.
        :raises InvalidMessage: the body is still not a valid request; ``reason`` says why.
        """
        with self.session_factory() as session:
            letter = require_dead_letter(session, dead_letter_id)
            if letter.retried_at is not None:
                raise AlreadyRetried(dead_letter_id, letter.retried_job_id)
            original = decode_body(letter.body, letter.body_base64)
            truncated = letter.body_size > len(original)
        if body is None and truncated:
            raise InvalidMessage(
                f"too large: {letter.body_size} bytes were received and only the first {len(original)} kept; "
                "give the corrected body"
            )
        request = parse_message(original if body is None else body, max_bytes=self.max_bytes)
        result = self.create(request, origin=f"dead-letter:{dead_letter_id}")
        assert result.job_id is not None
        with self.session_factory() as session:
            letter = require_dead_letter(session, dead_letter_id, for_update=True)
            mark_retried(session, letter, job_id=result.job_id, now=self.now())
            session.commit()
        return result
