"""The job lifecycle (ltx2.store.lifecycle) and the webhook outbox it writes, delivered by ltx2.store.notifier."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from ltx2.settings import Settings
from ltx2.store import lifecycle
from ltx2.store.jobs import JobStore
from ltx2.store.models import Job, OutboxEvent, WebhookDelivery, utcnow
from ltx2.store.notifier import Notifier
from ltx2.store.webhooks import verify
from tests.api_helpers import api
from tests.receiver import Receiver

HOOK = "http://127.0.0.1:9/hook"  # never contacted by the tests that do not run a notifier


@pytest.fixture
def store(db_url):
    s = JobStore(db_url, base_url="http://testserver")
    s.migrate()
    yield s
    s.close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.stop()


def local(receiver: Receiver) -> str:
    """The allow-list entry for a receiver on this machine (deliveries go through the guarded fetcher)."""
    return receiver.url.split("/")[2]


def outbox(store: JobStore, job_id: str, event: str | None = None) -> list[OutboxEvent]:
    query = select(OutboxEvent).where(OutboxEvent.job_id == job_id).order_by(OutboxEvent.id)
    if event is not None:
        query = query.where(OutboxEvent.event == event)
    with store.session() as s:
        return list(s.scalars(query))


def go_stale(store: JobStore, job_id: str) -> None:
    with store.session() as s:
        s.execute(update(Job).where(Job.id == job_id).values(heartbeat_at=utcnow() - timedelta(minutes=5)))
        s.commit()


def test_reaped_job_forgets_all_of_its_progress(store):
    # Drift bug: the reaper's requeue reset phase, step and percent but kept progress_total, so a requeued job
    # showed "step 0 of 40" from its lost run. Requeues now share one definition of what a move resets.
    job = store.create("generate", {})[0]
    lifecycle.claim(store, "w1", ["generate"])
    store.set_progress(job.id, phase="denoising", step=12, total=40, percent=30.0, worker_id="w1")
    go_stale(store, job.id)
    assert lifecycle.reap(store, 60) == [(job.id, "starting")]
    requeued = store.get(job.id)
    assert (requeued.progress_total, requeued.progress_step, requeued.progress_percent) == (0, 0, 0.0)
    assert requeued.progress_phase is None and requeued.heartbeat_at is None


def test_cancel_of_a_waiting_job_is_a_guarded_move_with_its_completed_message(store):
    # Drift bug: request_cancel wrote status='canceled' itself, outside ALLOWED_MOVES, and left the `completed`
    # webhook to whichever route called it. Now it is the lifecycle's CANCELED move and records the message.
    job = store.create("generate", {}, webhook=HOOK)[0]
    canceled = lifecycle.cancel(store, job.id)
    assert canceled.status == "canceled" and canceled.status_sequence == 1 and canceled.completed_at is not None
    [message] = outbox(store, job.id)
    assert message.event == "completed" and message.msg_id == f"msg_{job.id}_completed_1"
    assert json.loads(message.body)["status"] == "canceled"
    assert lifecycle.cancel(store, job.id).status_sequence == 1  # a second cancel moves nothing
    assert len(outbox(store, job.id)) == 1


def test_cancel_of_a_running_job_only_flags_it(store):
    job = store.create("generate", {}, webhook=HOOK, webhook_events_filter=["completed"])[0]
    lifecycle.claim(store, "w", ["generate"])
    assert lifecycle.cancel(store, job.id).status == "processing"
    assert outbox(store, job.id) == []  # nothing finished yet
    assert lifecycle.move(store, job.id, "canceled", worker_id="w")  # the worker stops at its next step
    assert [m.event for m in outbox(store, job.id)] == ["completed"]


def test_each_move_records_the_events_its_webhook_asked_for(store):
    job = store.create("generate", {}, webhook=HOOK)[0]  # no filter: every event
    plain = store.create("generate", {})[0]  # no webhook: nothing to send
    assert lifecycle.claim(store, "w", ["generate"]).id == job.id
    lifecycle.log(store, job.id, "step 1")
    lifecycle.log(store, job.id, "step 2")
    assert lifecycle.move(store, job.id, "succeeded", worker_id="w", output={"video": "a.mp4"})
    events = [(m.event, m.status_sequence) for m in outbox(store, job.id)]
    assert events == [("start", 1), ("logs", 1), ("logs", 1), ("output", 2), ("completed", 2)]
    start, completed = outbox(store, job.id, "start")[0], outbox(store, job.id, "completed")[0]
    assert json.loads(start.body)["status"] == "processing"  # the document as it was at the move
    assert json.loads(completed.body)["output"]["video_url"] == "http://testserver/download/a.mp4"
    assert len({m.msg_id for m in outbox(store, job.id)}) == 5
    lifecycle.claim(store, "w", ["generate"])
    lifecycle.move(store, plain.id, "failed", worker_id="w", error="x")
    assert outbox(store, plain.id) == []


def test_reaper_failure_records_completed_once_even_with_two_reapers(store):
    job = store.create("generate", {}, webhook=HOOK, webhook_events_filter=["completed"])[0]
    other = JobStore(store.url)
    try:
        for _ in range(2):  # lost twice: requeued, then failed worker_lost
            lifecycle.claim(store, "w", ["generate"])
            go_stale(store, job.id)
            moved = lifecycle.reap(store, 60) + lifecycle.reap(other, 60)
            assert len(moved) == 1
    finally:
        other.close()
    assert store.get(job.id).status == "failed"
    assert [m.msg_id for m in outbox(store, job.id)] == [f"msg_{job.id}_completed_4"]


def test_notifier_delivers_signed_and_retries_under_one_id(store, receiver, tmp_path):
    settings = Settings(
        outputs_dir=tmp_path / "out",
        webhook_secret="whsec_YXZhdGFyLWdlbmVyYXRvci10ZXN0LWtleS0yNA==",
        fetch_allow=[local(receiver)],
    )
    receiver.statuses = [503]  # the first attempt fails, the retry succeeds
    job = store.create("generate", {}, webhook=receiver.url, webhook_events_filter=["completed"])[0]
    lifecycle.cancel(store, job.id)
    notifier = Notifier(store, settings, poll_s=0.1).start()
    try:
        deadline = time.monotonic() + 20
        while not outbox(store, job.id)[0].delivered_at and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        notifier.stop()
    [message] = outbox(store, job.id)
    assert message.ok and message.attempts == 1  # one lease; the retry happened inside it
    assert [r["headers"]["webhook-id"] for r in receiver.requests] == [message.msg_id] * 2
    for request in receiver.requests:
        assert verify(settings.webhook_secret, request["headers"], request["body"])
        assert json.loads(request["body"])["status"] == "canceled"
    with store.session() as s:
        attempts = list(s.scalars(select(WebhookDelivery.ok).where(WebhookDelivery.job_id == job.id)))
    assert attempts == [False, True]


def test_a_message_whose_sender_died_is_sent_again_by_another_notifier(store, receiver, tmp_path):
    settings = Settings(outputs_dir=tmp_path / "out", webhook_secret="plain-secret", fetch_allow=[local(receiver)])
    job = store.create("generate", {}, webhook=receiver.url)[0]
    lifecycle.cancel(store, job.id)
    # A notifier took the message and died: its lease is still running, so nobody else sends it yet.
    with store.session() as s:
        s.execute(update(OutboxEvent).values(lease_until=utcnow() + timedelta(minutes=2), attempts=1))
        s.commit()
    second = Notifier(store, settings)
    assert second.dispatch() == 0
    with store.session() as s:  # the lease ran out
        s.execute(update(OutboxEvent).values(lease_until=utcnow() - timedelta(seconds=1)))
        s.commit()
    assert second.dispatch() == 1
    assert second.dispatch() == 0  # in flight here: not taken twice
    second.stop(timeout=10)
    [message] = outbox(store, job.id)
    assert message.delivered_at is not None and message.attempts == 2
    assert [r["headers"]["webhook-id"] for r in receiver.requests] == [f"msg_{job.id}_completed_1"]


@pytest.mark.parametrize("kind, path", [("generate", "predictions"), ("train", "trainings")])
def test_both_cancel_routes_record_one_completed_message(tmp_path, receiver, kind, path):
    # Drift bug: /v1/predictions/…/cancel sent `completed` only for canceled jobs, /v1/trainings/…/cancel for
    # any final state (so a training that finished by itself just before the cancel was announced twice).
    # Neither route sends anything now: the move records the message, once.
    with api(tmp_path) as (client, settings):
        store = client.app.state.store
        job = store.create(kind, {}, webhook=receiver.url, webhook_events_filter=["completed"])[0]
        first = client.post(f"/v1/{path}/{job.id}/cancel")
        assert first.status_code == 200 and first.json()["status"] == "canceled"
        assert client.post(f"/v1/{path}/{job.id}/cancel").json()["status"] == "canceled"
        assert [m.msg_id for m in outbox(store, job.id)] == [f"msg_{job.id}_completed_1"]
        finished = store.create(kind, {}, webhook=receiver.url, webhook_events_filter=["completed"])[0]
        lifecycle.claim(store, "w", [kind])
        lifecycle.move(store, finished.id, "succeeded", worker_id="w", output={})
        assert client.post(f"/v1/{path}/{finished.id}/cancel").json()["status"] == "succeeded"
        assert len(outbox(store, finished.id, "completed")) == 1


def test_a_busy_notifier_sends_the_rest_once_a_delivery_finishes(store, receiver, tmp_path):
    settings = Settings(outputs_dir=tmp_path / "out", webhook_secret="plain-secret", fetch_allow=[local(receiver)])
    receiver.stall_s = 0.3  # a slow receiver: two deliveries at a time, six messages
    jobs = [store.create("generate", {"n": i}, webhook=receiver.url)[0] for i in range(6)]
    for job in jobs:
        lifecycle.cancel(store, job.id)
    notifier = Notifier(store, settings, poll_s=30, threads=2).start()  # no polling help: wake-ups only
    try:
        deadline = time.monotonic() + 20
        while len(receiver.requests) < 6 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        notifier.stop()
    assert sorted(r["headers"]["webhook-id"] for r in receiver.requests) == sorted(
        f"msg_{job.id}_completed_1" for job in jobs
    )


def test_the_notifier_delivers_through_the_guarded_fetcher(store, receiver, tmp_path):
    # A job whose webhook reaches loopback (say a name that resolved elsewhere when the job was created): with the
    # default allow-list (n8n's port only) the delivery is refused when it connects, and the receiver never hears.
    # Retrying a refused address cannot help, so it is tried once.
    settings = Settings(outputs_dir=tmp_path / "out", webhook_secret="plain-secret")
    job = store.create("generate", {}, webhook=receiver.url, webhook_events_filter=["completed"])[0]
    lifecycle.cancel(store, job.id)
    notifier = Notifier(store, settings, poll_s=0.1).start()
    try:
        deadline = time.monotonic() + 30
        while not outbox(store, job.id)[0].delivered_at and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        notifier.stop()
    [message] = outbox(store, job.id)
    assert message.delivered_at is not None and not message.ok
    assert receiver.requests == []
    with store.session() as s:
        errors = list(s.scalars(select(WebhookDelivery.error).where(WebhookDelivery.job_id == job.id)))
    assert len(errors) == 1 and "loopback" in errors[0], errors  # a refusal is final: no retries
