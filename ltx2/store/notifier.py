"""Webhook delivery from the outbox: in the background, "completed" retried, every attempt logged per job."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from loguru import logger
from sqlalchemy import or_, select, update

from ltx2.net import FetchPolicy, guarded_client
from ltx2.settings import Settings
from ltx2.store.jobs import JobStore
from ltx2.store.links import state_secret
from ltx2.store.models import OutboxEvent, utcnow
from ltx2.store.webhooks import Deliverer, generate_secret


def webhook_secret(settings: Settings) -> str:
    """The configured secret, else one generated once into the state folder (so restarts keep it)."""
    return settings.webhook_secret or state_secret(settings, "webhook_secret", generate_secret)


class Notifier:
    """The one sender of webhooks: delivers the messages the lifecycle wrote into the outbox.

    At least once: a row is taken under a lease (a guarded UPDATE, so notifiers in several processes never send
    the same row at once), delivered with its event's retries under its one message id, then marked delivered. A
    process that dies mid-delivery leaves the lease to run out; another notifier then sends it again.
    """

    LEASE_S = 120.0  # longer than the `completed` retry schedule (~31 s plus timeouts)

    def __init__(self, store: JobStore, settings: Settings, *, poll_s: float = 1.0, threads: int = 4):
        self.store, self.settings, self.poll_s = store, settings, poll_s
        self._stop = threading.Event()
        self.threads = threads  # deliveries at once; a slow receiver holds one, not the others
        self._in_flight: set[int] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._secret: str | None = None

    def start(self) -> Notifier:
        self._thread = threading.Thread(target=self._run, name="notifier", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop taking rows; give deliveries in flight up to `timeout` s (the rest are resent after their lease)."""
        self._stop.set()
        self.store.outbox_written.set()
        if self._thread is not None:
            self._thread.join(timeout)
        deadline = time.monotonic() + timeout
        while self._in_flight and time.monotonic() < deadline:
            time.sleep(0.05)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.store.outbox_written.wait(self.poll_s)
            self.store.outbox_written.clear()
            if self._stop.is_set():
                break
            try:
                self.dispatch()
            except Exception:  # noqa: BLE001 - a database hiccup must not end the notifier
                logger.exception("notifier pass failed")

    def dispatch(self) -> int:
        """Take every due message not already in flight here and hand it to a delivery thread."""
        now = utcnow()
        with self.store.session() as s:
            ids = list(
                s.scalars(
                    select(OutboxEvent.id)
                    .where(
                        OutboxEvent.delivered_at.is_(None),
                        or_(OutboxEvent.lease_until.is_(None), OutboxEvent.lease_until < now),
                    )
                    .order_by(OutboxEvent.id)
                    .limit(100)
                )
            )
        taken = 0
        for row_id in ids:
            with self._lock:
                if len(self._in_flight) >= self.threads:
                    break  # the rest waits for the next pass
                if row_id in self._in_flight:
                    continue
            row = self._take(row_id)
            if row is None:  # another notifier took it
                continue
            with self._lock:
                self._in_flight.add(row_id)
            # Daemon threads: exiting never waits on a slow receiver; an unfinished message is sent again by
            # whichever notifier finds its lease run out.
            threading.Thread(
                target=self._deliver, args=(row,), name=f"webhook-{row.job_id}-{row.event}", daemon=True
            ).start()
            taken += 1
        return taken

    def _take(self, row_id: int) -> OutboxEvent | None:
        now = utcnow()
        with self.store.session() as s:
            row = s.scalar(
                update(OutboxEvent)
                .where(
                    OutboxEvent.id == row_id,
                    OutboxEvent.delivered_at.is_(None),
                    or_(OutboxEvent.lease_until.is_(None), OutboxEvent.lease_until < now),
                )
                .values(lease_until=now + timedelta(seconds=self.LEASE_S), attempts=OutboxEvent.attempts + 1)
                .returning(OutboxEvent)
                .execution_options(synchronize_session=False)
            )
            s.commit()
        return row

    def _deliver(self, row: OutboxEvent) -> None:
        try:
            if self._secret is None:
                self._secret = webhook_secret(self.settings)

            def log(attempt) -> None:
                self.store.log_delivery(
                    row.job_id,
                    event=row.event,
                    msg_id=row.msg_id,
                    attempt=attempt.attempt,
                    ok=attempt.ok,
                    status_code=attempt.status_code,
                    error=attempt.error,
                )

            # Every outbound URL goes through the one guarded fetcher (ltx2.net): the address is checked when the
            # connection is made, not only when the job was created (DNS can change in between), no redirects.
            with (
                guarded_client(FetchPolicy.from_settings(self.settings)) as client,
                Deliverer(self._secret, client=client) as deliverer,
            ):
                result = deliverer.deliver_with_retry(row.url, row.event, row.body.encode(), row.msg_id, on_attempt=log)
            with self.store.session() as s:
                s.execute(
                    update(OutboxEvent)
                    .where(OutboxEvent.id == row.id)
                    .values(delivered_at=utcnow(), ok=result.ok, lease_until=None)
                )
                s.commit()
        except Exception:  # noqa: BLE001 - a webhook must never take a job or a process down
            logger.exception("webhook {} for job {} failed", row.event, row.job_id)
        finally:
            with self._lock:
                self._in_flight.discard(row.id)
            self.store.outbox_written.set()  # a slot is free: look for messages left waiting
