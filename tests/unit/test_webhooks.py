"""Webhook signing, validation and delivery (against a real HTTP receiver on 127.0.0.1)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import socket
import time

import pytest

from ltx2.store.webhooks import (
    EVENTS,
    Deliverer,
    DeliveryAttempt,
    backoff_delay,
    generate_secret,
    new_message_id,
    retries_for,
    sign,
    validate_events_filter,
    validate_webhook_url,
    verify,
)
from tests.receiver import Receiver

# A whsec_ secret whose key is the 28 ASCII bytes "avatar-generator-test-key-24".
SECRET = "whsec_YXZhdGFyLWdlbmVyYXRvci10ZXN0LWtleS0yNA=="
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TS = 1614265330
BODY = b'{"test": 2432232314}'
# Computed outside Python with:
#   printf 'msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330.{"test": 2432232314}' \
#     | openssl dgst -sha256 -mac HMAC -macopt hexkey:<hex of the key> -binary | base64
OPENSSL_SIG = "v1,r5w1hA7LEHlLI95p67wzXc+yfnJJuV98mPCy3IznyOg="


def _headers(msg_id: str, ts: int, sig: str) -> dict[str, str]:
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": sig}


# ----------------------------------------------------------------------------------------------- signing


def test_known_vector_by_hand_and_openssl():
    # The spec's definition, spelled out independently of the module.
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    assert key == b"avatar-generator-test-key-24"
    digest = hmac.new(key, f"{MSG_ID}.{TS}.".encode() + BODY, hashlib.sha256).digest()
    by_hand = "v1," + base64.b64encode(digest).decode()
    assert sign(SECRET, MSG_ID, TS, BODY) == by_hand == OPENSSL_SIG


def test_raw_string_secret_uses_utf8_bytes():
    raw = "plain password ü"
    expected = hmac.new(raw.encode("utf-8"), f"{MSG_ID}.{TS}.".encode() + BODY, hashlib.sha256).digest()
    assert sign(raw, MSG_ID, TS, BODY) == "v1," + base64.b64encode(expected).decode()
    assert verify(raw, _headers(MSG_ID, TS, sign(raw, MSG_ID, TS, BODY)), BODY, now=TS)


def test_bad_secrets_raise():
    with pytest.raises(ValueError):
        sign("whsec_not*base64!", MSG_ID, TS, BODY)
    with pytest.raises(ValueError):
        sign("", MSG_ID, TS, BODY)
    with pytest.raises(ValueError):
        verify("whsec_", _headers(MSG_ID, TS, OPENSSL_SIG), BODY, now=TS)


def test_generate_secret_format_and_round_trip():
    secret = generate_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret[6:], validate=True)) == 24
    assert generate_secret() != secret
    now = int(time.time())
    sig = sign(secret, "msg_1", now, BODY)
    assert verify(secret, _headers("msg_1", now, sig), BODY)


def test_round_trip_and_case_insensitive_headers():
    sig = sign(SECRET, MSG_ID, TS, BODY)
    assert verify(SECRET, _headers(MSG_ID, TS, sig), BODY, now=TS + 10)
    upper = {"Webhook-Id": MSG_ID, "Webhook-Timestamp": str(TS), "Webhook-Signature": sig}
    assert verify(SECRET, upper, BODY, now=TS)


@pytest.mark.parametrize(
    "case",
    ["tampered body", "wrong secret", "stale", "future", "other id"],
)
def test_verify_rejects(case):
    sig = sign(SECRET, MSG_ID, TS, BODY)
    headers, body, secret, now = _headers(MSG_ID, TS, sig), BODY, SECRET, TS
    if case == "tampered body":
        body = BODY.replace(b"2432232314", b"2432232315")
    elif case == "wrong secret":
        secret = generate_secret()
    elif case == "stale":
        now = TS + 301
    elif case == "future":
        now = TS - 301
    elif case == "other id":
        headers["webhook-id"] = "msg_other"
    assert verify(secret, headers, body, now=now) is False


def test_tolerance_edges():
    headers = _headers(MSG_ID, TS, sign(SECRET, MSG_ID, TS, BODY))
    assert verify(SECRET, headers, BODY, now=TS + 300)
    assert verify(SECRET, headers, BODY, now=TS - 300)
    assert not verify(SECRET, headers, BODY, tolerance_s=5, now=TS + 6)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"webhook-id": MSG_ID, "webhook-timestamp": str(TS)},
        {"webhook-id": MSG_ID, "webhook-signature": OPENSSL_SIG},
        {"webhook-timestamp": str(TS), "webhook-signature": OPENSSL_SIG},
        _headers(MSG_ID, TS, ""),
        _headers(MSG_ID, TS, "garbage"),
        _headers(MSG_ID, TS, "v1"),
        _headers(MSG_ID, TS, "v1,"),
        _headers(MSG_ID, TS, "v2," + OPENSSL_SIG[3:]),
        _headers(MSG_ID, TS, OPENSSL_SIG[3:]),
        _headers(MSG_ID, TS, "v1,ü"),
        {"webhook-id": MSG_ID, "webhook-timestamp": "1614265330.5", "webhook-signature": OPENSSL_SIG},
        {"webhook-id": MSG_ID, "webhook-timestamp": "-1614265330", "webhook-signature": OPENSSL_SIG},
        {"webhook-id": MSG_ID, "webhook-timestamp": "soon", "webhook-signature": OPENSSL_SIG},
        {"webhook-id": "", "webhook-timestamp": str(TS), "webhook-signature": OPENSSL_SIG},
    ],
)
def test_verify_malformed_headers_false(headers):
    assert verify(SECRET, headers, BODY, now=TS) is False


def test_multiple_signatures_one_matches():
    other = sign(generate_secret(), MSG_ID, TS, BODY)
    header = f"v1a,c29tZS1hc3ltbWV0cmljLXNpZw== {other} {OPENSSL_SIG} v1,AAAA"
    assert verify(SECRET, _headers(MSG_ID, TS, header), BODY, now=TS)
    assert not verify(SECRET, _headers(MSG_ID, TS, f"{other} v1,AAAA"), BODY, now=TS)


# -------------------------------------------------------------------------------------------- validation


def test_events_filter():
    assert EVENTS == ("start", "output", "logs", "completed")
    assert validate_events_filter(None) == list(EVENTS)
    assert validate_events_filter(["completed", "start", "completed"]) == ["start", "completed"]
    assert validate_events_filter(("logs",)) == ["logs"]
    for bad in (["finished"], ["completed", "Start"], [None], [], "completed"):
        with pytest.raises(ValueError):
            validate_events_filter(bad)


def test_retry_policy():
    assert retries_for("completed") == 6
    assert [retries_for(e) for e in ("start", "output", "logs")] == [1, 1, 1]
    with pytest.raises(ValueError):
        retries_for("done")
    assert [backoff_delay(n) for n in range(5)] == [1, 2, 4, 8, 16]
    assert backoff_delay(10, base=1, max_backoff=30) == 30
    a = [backoff_delay(n, jitter=0.1, rng=random.Random(7)) for n in range(4)]
    b = [backoff_delay(n, jitter=0.1, rng=random.Random(7)) for n in range(4)]
    assert a == b and all(2**n <= d <= 2**n * 1.1 for n, d in enumerate(a))


@pytest.mark.parametrize(
    ("url", "allow_private", "ok"),
    [
        ("https://example.com/hook", False, True),
        ("http://example.com:8080/webhook/abc?x=1", False, True),
        ("HTTPS://Example.COM/hook", False, True),
        ("http://localhost:5678/webhook-waiting/12", True, True),
        ("http://127.0.0.1:5678/webhook-waiting/12", True, True),
        ("http://192.168.1.20/hook", True, True),
        ("http://[::1]:5678/hook", True, True),
        ("http://n8n:5678/webhook/x", False, True),  # a docker service name is not an IP literal
        ("http://localhost:5678/hook", False, False),
        ("http://LOCALHOST./hook", False, False),
        ("http://api.localhost/hook", False, False),
        ("http://127.0.0.1/hook", False, False),
        ("http://127.1/hook", False, False),
        ("http://2130706433/hook", False, False),
        ("http://0x7f.0.0.1/hook", False, False),
        ("http://0.0.0.0/hook", False, False),
        ("http://10.0.0.5/hook", False, False),
        ("http://172.16.3.4/hook", False, False),
        ("http://192.168.1.20/hook", False, False),
        ("http://169.254.169.254/latest/meta-data", False, False),
        ("http://[::1]/hook", False, False),
        ("http://[fe80::1]/hook", False, False),
        ("http://[fd00::1]/hook", False, False),
        ("http://[::ffff:127.0.0.1]/hook", False, False),
        ("http://8.8.8.8/hook", False, True),
        ("ftp://example.com/hook", True, False),
        ("file:///etc/passwd", True, False),
        ("javascript:alert(1)", True, False),
        ("example.com/hook", True, False),
        ("//example.com/hook", True, False),
        ("http://", True, False),
        ("http:///path", True, False),
        ("http://user:pass@example.com/hook", True, False),
        ("http://user@example.com/hook", True, False),
        ("http://example.com:99999/hook", True, False),
        ("http://example.com:0/hook", True, False),
        ("http://example.com:abc/hook", True, False),
        ("http://[::1/hook", True, False),
        ("http://exa mple.com/hook", True, False),
        ("http://example.com/hook\r\nX-Evil: 1", True, False),
        ("", True, False),
        ("https://example.com/" + "a" * 2100, True, False),
    ],
)
def test_validate_webhook_url(url, allow_private, ok):
    if ok:
        assert validate_webhook_url(url, allow_private=allow_private) == url
    else:
        with pytest.raises(ValueError) as info:
            validate_webhook_url(url, allow_private=allow_private)
        assert str(info.value)


def test_url_length_limit_is_inclusive():
    prefix = "https://example.com/"
    url = prefix + "a" * (2048 - len(prefix))
    assert validate_webhook_url(url, allow_private=False) == url
    with pytest.raises(ValueError, match="2048"):
        validate_webhook_url(url + "a", allow_private=False)


# -------------------------------------------------------------------------------------- real receiver


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.stop()


@pytest.fixture
def deliverer():
    with Deliverer(SECRET, timeout=2.0, trust_env=False) as d:
        yield d


JOB = json.dumps({"id": "job_1", "status": "succeeded", "output": "outputs/job_1.mp4"}).encode()


def test_deliver_ok_signed(receiver, deliverer):
    msg_id = new_message_id()
    result = deliverer.deliver(receiver.url, "completed", JOB, msg_id)
    assert isinstance(result, DeliveryAttempt)
    assert result.ok and result.status_code == 204 and result.error is None
    assert result.event == "completed" and result.msg_id == msg_id and result.attempt == 1
    assert result.duration_s >= 0 and abs(result.at - time.time()) < 5
    assert result.to_dict()["status_code"] == 204
    (req,) = receiver.requests
    h = req["headers"]
    assert req["path"] == "/hook" and req["body"] == JOB
    assert h["content-type"] == "application/json"
    assert h["user-agent"] == "avatar-generator-webhooks/1"
    assert h["webhook-id"] == msg_id
    assert abs(int(h["webhook-timestamp"]) - time.time()) < 5
    assert h["webhook-signature"].startswith("v1,")
    assert verify(SECRET, h, req["body"])
    assert not verify(generate_secret(), h, req["body"])


def test_deliver_unsigned_without_secret(receiver):
    with Deliverer(None, timeout=2.0, trust_env=False) as d:
        result = d.deliver(receiver.url, "start", JOB, "msg_x")
    assert result.ok
    h = receiver.requests[0]["headers"]
    assert h["webhook-id"] == "msg_x" and "webhook-timestamp" in h and "webhook-signature" not in h


def test_deliver_non_2xx_is_not_ok(receiver, deliverer):
    receiver.statuses = [404]
    result = deliverer.deliver(receiver.url, "output", JOB, "msg_y")
    assert not result.ok and result.status_code == 404 and result.error == "HTTP 404"


def test_retry_until_success(receiver, deliverer):
    receiver.statuses = [500, 500, 204]
    delays: list[float] = []
    seen: list[DeliveryAttempt] = []
    msg_id = new_message_id()
    final = deliverer.deliver_with_retry(
        receiver.url, "completed", JOB, msg_id, sleep=delays.append, on_attempt=seen.append
    )
    assert final.ok and final.attempt == 3 and final.status_code == 204
    assert [a.attempt for a in seen] == [1, 2, 3]
    assert [a.status_code for a in seen] == [500, 500, 204]
    assert [a.ok for a in seen] == [False, False, True]
    assert seen[-1] is final
    assert delays == [1.0, 2.0] and delays[1] > delays[0]
    assert len(receiver.requests) == 3
    assert {r["headers"]["webhook-id"] for r in receiver.requests} == {msg_id}
    for r in receiver.requests:  # each retry is re-signed and still valid
        assert verify(SECRET, r["headers"], r["body"])


def test_retry_gives_up_and_survives_callback_errors(receiver, deliverer):
    receiver.statuses = [503] * 10
    delays: list[float] = []

    def broken_log(attempt):
        raise RuntimeError("job store down")

    final = deliverer.deliver_with_retry(
        receiver.url,
        "completed",
        JOB,
        "msg_z",
        attempts=4,
        backoff=0.5,
        max_backoff=1.5,
        jitter=0.1,
        rng=random.Random(1),
        sleep=delays.append,
        on_attempt=broken_log,
    )
    assert not final.ok and final.attempt == 4 and final.error == "HTTP 503"
    assert len(receiver.requests) == 4 and len(delays) == 3
    assert 0.5 <= delays[0] < delays[1] <= delays[2] == 1.5


def test_non_completed_events_fire_once(receiver, deliverer):
    receiver.statuses = [500, 500]
    delays: list[float] = []
    final = deliverer.deliver_with_retry(receiver.url, "logs", JOB, "msg_l", sleep=delays.append)
    assert not final.ok and final.attempt == 1 and delays == [] and len(receiver.requests) == 1


def test_closed_port_is_connection_error(deliverer):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # Port is now closed; nothing listens on it.
    result = deliverer.deliver(f"http://127.0.0.1:{port}/hook", "completed", JOB, "msg_c")
    assert not result.ok and result.status_code is None
    assert result.error.startswith("connection error")
    assert len(result.error) <= 200


def test_slow_receiver_times_out(receiver):
    receiver.stall_s = 3.0
    with Deliverer(SECRET, timeout=0.3, trust_env=False) as d:
        started = time.monotonic()
        result = d.deliver(receiver.url, "completed", JOB, "msg_t")
        elapsed = time.monotonic() - started
    assert not result.ok and result.status_code is None
    assert result.error.startswith("timeout")
    assert elapsed < 2.0


def test_unusable_url_is_not_an_exception(deliverer):
    for url in ("not a url", "http://[::1"):
        result = deliverer.deliver(url, "completed", JOB, "msg_u")
        assert not result.ok and result.status_code is None
        assert result.error.startswith("invalid URL")


def test_unknown_event_is_a_programming_error(deliverer, receiver):
    with pytest.raises(ValueError):
        deliverer.deliver(receiver.url, "finished", JOB, "msg_e")
    assert receiver.requests == []
