"""Webhook events for a job: sent in the background, "completed" retried, every attempt logged per job."""

from __future__ import annotations

import json
import os
import secrets
import threading

from loguru import logger

from ltx2.jobs.documents import job_document
from ltx2.jobs.store import JobStore
from ltx2.jobs.webhooks import Deliverer, new_message_id, validate_events_filter
from ltx2.net import FetchPolicy, guarded_client
from ltx2.settings import Settings

_threads: list[threading.Thread] = []


def webhook_secret(settings: Settings) -> str:
    """The configured secret, else one generated once into the state folder (so restarts keep it)."""
    from ltx2.jobs.webhooks import generate_secret

    if settings.webhook_secret:
        return settings.webhook_secret
    path = settings.state_dir / "webhook_secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Several processes (machines, on shared storage) may get here at once: each writes its own temp file
        # and links it into place; a link never replaces an existing file, so the first one wins for everyone.
        tmp = path.with_name(f".webhook_secret.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        tmp.write_text(generate_secret())
        tmp.chmod(0o600)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    return path.read_text().strip()


def send(store: JobStore, settings: Settings, job_id: str, event: str) -> threading.Thread | None:
    job = store.get(job_id)
    if job is None or not job.webhook or event not in validate_events_filter(job.webhook_events_filter):
        return None
    body = json.dumps(job_document(job, settings.base_url), separators=(",", ":")).encode()
    # One id per message, kept across its retries so receivers can drop duplicates. Status events happen once
    # per status move; log events can repeat within one, so they get fresh ids.
    msg_id = new_message_id() if event == "logs" else f"msg_{job.id}_{event}_{job.status_sequence}"
    url, secret = job.webhook, webhook_secret(settings)

    def deliver() -> None:
        def log(attempt) -> None:
            store.log_delivery(job_id, event=event, msg_id=msg_id, attempt=attempt.attempt, ok=attempt.ok,
                               status_code=attempt.status_code, error=attempt.error)

        try:
            # Every outbound URL goes through the guarded fetcher (ltx2.net): checked address, no redirects.
            with guarded_client(FetchPolicy.from_settings(settings)) as client, \
                    Deliverer(secret, client=client) as deliverer:
                deliverer.deliver_with_retry(url, event, body, msg_id, on_attempt=log)
        except Exception:  # noqa: BLE001 - a webhook must never take a job or a process down
            logger.exception("webhook {} for job {} failed", event, job_id)

    thread = threading.Thread(target=deliver, name=f"webhook-{job_id}-{event}", daemon=True)
    thread.start()
    _threads.append(thread)
    _threads[:] = [t for t in _threads if t.is_alive()]
    return thread


def wait_for_deliveries(timeout: float = 60.0) -> None:
    """Give in-flight deliveries a chance to finish before a process exits."""
    for thread in list(_threads):
        thread.join(timeout)
