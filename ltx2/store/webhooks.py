"""Outbound job webhooks: Standard Webhooks signing, URL/filter validation, delivery with retry.

A job may carry ``webhook`` and ``webhook_events_filter`` (Replicate's shape). On each event the server POSTs
the job document to the URL. n8n resumes a Wait node from such a callback, so "completed" is retried until the
receiver answers 2xx; the other events are best-effort and fire once.

Signing follows https://www.standardwebhooks.com/ (v1, symmetric):

* ``webhook-id``: unique per message, the same on every retry of that message (receivers dedupe on it);
* ``webhook-timestamp``: integer unix seconds of the attempt (receivers reject stale ones);
* ``webhook-signature``: space-separated ``v1,<base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}"))>``.

Secrets: ``whsec_<base64>`` is the spec's format; the HMAC key is the base64-decoded part. Any other string
is used as a raw secret (its UTF-8 bytes are the key) so an operator can paste a plain password; ``bytes`` are
used as the key unchanged. A ``whsec_`` string whose remainder is not valid base64 is rejected rather than
silently treated as raw, because that would produce signatures no spec-following receiver can check.

No torch here: the API process imports this module.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import logging
import random
import re
import secrets as _secrets
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from urllib.parse import urlsplit

import httpx

from ltx2.net import PolicyRefusal

__all__ = [
    "EVENTS",
    "DEFAULT_EVENTS_FILTER",
    "SECRET_PREFIX",
    "MAX_URL_LENGTH",
    "DeliveryAttempt",
    "Deliverer",
    "generate_secret",
    "new_message_id",
    "retries_for",
    "backoff_delay",
    "sign",
    "verify",
    "validate_events_filter",
    "validate_webhook_url",
]

log = logging.getLogger(__name__)

EVENTS: tuple[str, ...] = ("start", "output", "logs", "completed")
DEFAULT_EVENTS_FILTER: tuple[str, ...] = EVENTS
SECRET_PREFIX = "whsec_"
SIGNATURE_VERSION = "v1"
MAX_URL_LENGTH = 2048
DEFAULT_TOLERANCE_S = 300
DEFAULT_TIMEOUT_S = 10.0
USER_AGENT = "avatar-generator-webhooks/1"

# Retry policy for "completed": 6 attempts, sleeping 1, 2, 4, 8, 16 s between them (~31 s in all). Long enough
# to ride out n8n not yet sitting in its Wait node (it answers 404/409 until then) or a brief restart.
COMPLETED_ATTEMPTS = 6
DEFAULT_BACKOFF_S = 1.0
DEFAULT_MAX_BACKOFF_S = 30.0

_ERROR_MAX_CHARS = 200


# ---------------------------------------------------------------------------------------------- signing


def _key(secret: str | bytes) -> bytes:
    if isinstance(secret, bytes):
        key = secret
    elif isinstance(secret, str):
        if secret.startswith(SECRET_PREFIX):
            try:
                key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
            except (binascii.Error, ValueError) as exc:
                raise ValueError("webhook secret starts with 'whsec_' but the rest is not valid base64") from exc
        else:
            key = secret.encode("utf-8")
    else:
        raise TypeError(f"webhook secret must be str or bytes, not {type(secret).__name__}")
    if not key:
        raise ValueError("webhook secret is empty")
    return key


def sign(secret: str | bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value (one ``v1,`` entry) for this message."""
    if not isinstance(body, (bytes, bytearray)):
        raise TypeError("body must be bytes (the exact bytes sent on the wire)")
    # Body concatenated as bytes: decoding it would change what was signed for non-UTF-8 payloads.
    signed = f"{msg_id}.{int(timestamp)}.".encode() + bytes(body)
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode('ascii')}"


def _header(headers: Mapping[str, str], name: str) -> str | None:
    # Plain dicts are case-sensitive; HTTP header names are not.
    value = headers.get(name)
    if value is None:
        for k, v in headers.items():
            if isinstance(k, str) and k.lower() == name:
                return v
    return value


def verify(
    secret: str | bytes,
    headers: Mapping[str, str],
    body: bytes,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> bool:
    """True when one of the ``v1,`` signatures in ``headers`` matches ``body`` and the timestamp is fresh.

    Anything wrong with the message (missing/malformed header, stale or future timestamp, no matching
    signature) gives False. A malformed *secret* raises ValueError: that is configuration, not input.
    """
    _key(secret)  # raise on a bad secret even when the headers are junk
    msg_id = _header(headers, "webhook-id")
    ts_raw = _header(headers, "webhook-timestamp")
    sig_raw = _header(headers, "webhook-signature")
    if not msg_id or not ts_raw or not sig_raw:
        return False
    ts_raw = ts_raw.strip()
    if not ts_raw.isascii() or not ts_raw.isdigit():
        return False
    timestamp = int(ts_raw)
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        return False
    expected = sign(secret, msg_id, timestamp, body).encode("ascii")
    matched = False
    for candidate in sig_raw.split():
        version, sep, _ = candidate.partition(",")
        if not sep or version != SIGNATURE_VERSION:
            continue  # other schemes (e.g. v1a) may sit beside ours; the spec says skip them
        # No early exit: every entry is compared, so timing does not reveal which one matched.
        if hmac.compare_digest(candidate.encode("utf-8", "replace"), expected):
            matched = True
    return matched


def generate_secret() -> str:
    """A new ``whsec_`` secret with a 24-byte random key (the spec's minimum)."""
    return SECRET_PREFIX + base64.b64encode(_secrets.token_bytes(24)).decode("ascii")


def new_message_id() -> str:
    """A fresh ``webhook-id``; make one per (job, event) message and reuse it on that message's retries."""
    return f"msg_{uuid.uuid4().hex}"


# --------------------------------------------------------------------------------------------- validation


def validate_events_filter(events: Iterable[str] | None) -> list[str]:
    """The filter as a list in canonical order; None gives the default (all four events).

    Raises ValueError for unknown events, non-strings, a bare string, or an empty list (which would never
    fire; leave the field out for the default).
    """
    if events is None:
        return list(DEFAULT_EVENTS_FILTER)
    if isinstance(events, (str, bytes)):
        # A bare string is iterable: "completed" would otherwise become nine one-letter "events".
        raise ValueError("webhook_events_filter must be a list of event names, not a string")
    wanted = list(events)
    if not wanted:
        raise ValueError("webhook_events_filter is empty; omit it to receive all events " + str(list(EVENTS)))
    unknown = [e for e in wanted if not isinstance(e, str) or e not in EVENTS]
    if unknown:
        raise ValueError(f"unknown webhook event(s) {unknown!r}; allowed: {list(EVENTS)}")
    return [e for e in EVENTS if e in wanted]


_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]+|[0-9]+)){0,3}$", re.IGNORECASE)


def _ip_of(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    # Resolvers also accept short/decimal/hex IPv4 forms ("127.1", "2130706433", "0x7f.0.0.1").
    if _NUMERIC_HOST.match(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _is_private_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    # 0.0.0.0 / :: reach the local host on Linux, so they count as loopback here.
    return ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_unspecified


def validate_webhook_url(url: str, allow_private: bool = True) -> str:
    """Return ``url`` unchanged if it is an acceptable webhook target, else raise ValueError.

    Loopback and private targets are allowed by default: n8n often runs on the same machine. With
    ``allow_private=False`` loopback/private/link-local IP literals and ``localhost`` are refused. Host names
    are not resolved here, so a public name pointing at a private address is not caught (that needs a check
    at connect time). Redirects are never followed on delivery, so a public URL cannot bounce inward.
    """
    if not isinstance(url, str):
        raise ValueError("webhook URL must be a string")
    if not url:
        raise ValueError("webhook URL is empty")
    if len(url) > MAX_URL_LENGTH:
        raise ValueError(f"webhook URL is longer than {MAX_URL_LENGTH} characters")
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        raise ValueError("webhook URL contains whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError for a non-numeric or out-of-range port
    except ValueError as exc:
        raise ValueError(f"webhook URL is malformed: {exc}") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError(f"webhook URL must use http or https, not {parts.scheme or 'no scheme'!r}")
    if "@" in parts.netloc:
        # Credentials would be stored with the job and echoed in job documents and logs.
        raise ValueError("webhook URL must not contain credentials (user:password@)")
    host = parts.hostname
    if not host:
        raise ValueError("webhook URL has no host")
    if port == 0:
        raise ValueError("webhook URL port must be 1-65535")
    if not allow_private:
        name = host.rstrip(".")
        if name == "localhost" or name.endswith(".localhost"):
            raise ValueError("webhook URL points at localhost, which this server is configured to refuse")
        ip = _ip_of(name)
        if ip is not None and _is_private_ip(ip):
            raise ValueError(
                f"webhook URL points at a loopback/private/link-local address ({ip}), "
                "which this server is configured to refuse"
            )
    return url


# ----------------------------------------------------------------------------------------------- delivery


def retries_for(event: str) -> int:
    """How many attempts a message for ``event`` gets: "completed" is retried, the others fire once.

    Progress events are superseded by the next one and by "completed", so retrying them only adds load.
    """
    if event not in EVENTS:
        raise ValueError(f"unknown webhook event {event!r}")
    return COMPLETED_ATTEMPTS if event == "completed" else 1


def backoff_delay(
    retry_index: int,
    base: float = DEFAULT_BACKOFF_S,
    max_backoff: float = DEFAULT_MAX_BACKOFF_S,
    jitter: float = 0.0,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before retry ``retry_index`` (0 = the wait after the first attempt)."""
    delay = base * (2**retry_index)
    if jitter > 0:
        # Jitter only stretches (never shortens) so the schedule stays monotonic before the cap.
        delay *= 1.0 + jitter * (rng or random).random()
    return max(0.0, min(delay, max_backoff))


@dataclass(frozen=True)
class DeliveryAttempt:
    """One POST: what the job store logs per job."""

    event: str
    msg_id: str
    attempt: int  # 1-based
    status_code: int | None  # None when no HTTP response came back
    error: str | None  # short and human-readable; None when ok
    ok: bool
    duration_s: float
    at: float  # unix time the attempt started
    final: bool = False  # retrying cannot help (the fetch policy refused the address)

    def to_dict(self) -> dict:
        return asdict(self)


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _ERROR_MAX_CHARS else text[: _ERROR_MAX_CHARS - 1] + "…"


class Deliverer:
    """Signs and POSTs webhook messages with one reusable ``httpx.Client``.

    ``secret=None`` sends ``webhook-id`` and ``webhook-timestamp`` but no signature (for receivers that do not
    verify, e.g. an n8n Wait-node resume URL); set a secret whenever the receiver can check it.
    ``trust_env`` is passed to httpx (proxy variables); tests and loopback-only setups turn it off.
    """

    def __init__(
        self,
        secret: str | bytes | None,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        client: httpx.Client | None = None,
        trust_env: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if secret is not None:
            _key(secret)  # fail at construction, not on the first delivery
        self._secret = secret
        self._clock = clock
        self._owns_client = client is None
        # Redirects off: a 3xx is a failed delivery, and following it could reach an address the URL
        # validation refused.
        self._client = client or httpx.Client(timeout=timeout, follow_redirects=False, trust_env=trust_env)

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> Deliverer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def headers_for(self, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(timestamp)),
        }
        if self._secret is not None:
            headers["webhook-signature"] = sign(self._secret, msg_id, timestamp, body)
        return headers

    def deliver(self, url: str, event: str, body: bytes, msg_id: str, *, attempt: int = 1) -> DeliveryAttempt:
        """One POST. Network trouble and non-2xx answers come back as ``ok=False``, never as exceptions."""
        if event not in EVENTS:
            raise ValueError(f"unknown webhook event {event!r}")
        at = self._clock()
        # Timestamp per attempt (re-signed each time) so retries stay inside the receiver's tolerance.
        headers = self.headers_for(msg_id, int(at), body)
        started = time.monotonic()
        status: int | None = None
        error: str | None = None
        final = False
        try:
            # Streamed and closed without reading: the receiver's body is of no use and could be huge.
            with self._client.stream("POST", url, content=bytes(body), headers=headers) as response:
                status = response.status_code
            if not 200 <= status < 300:
                error = f"HTTP {status}"
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            # A URL that skipped validation (e.g. stored before it existed): a failed attempt, not a crash.
            error = _short(f"invalid URL ({type(exc).__name__}): {exc}")
        except PolicyRefusal as exc:
            error, final = _short(str(exc)), True
        except httpx.TimeoutException as exc:
            error = _short(f"timeout ({type(exc).__name__})")
        except httpx.TransportError as exc:
            error = _short(f"connection error ({type(exc).__name__}): {exc}")
        except (httpx.HTTPError, ValueError, OSError) as exc:
            error = _short(f"request failed ({type(exc).__name__}): {exc}")
        result = DeliveryAttempt(
            event=event,
            msg_id=msg_id,
            attempt=attempt,
            status_code=status,
            error=error,
            ok=error is None,
            duration_s=time.monotonic() - started,
            at=at,
            final=final,
        )
        if not result.ok:
            log.info("webhook %s %s attempt %d to %s failed: %s", event, msg_id, attempt, url, error)
        return result

    def deliver_with_retry(
        self,
        url: str,
        event: str,
        body: bytes,
        msg_id: str,
        *,
        attempts: int | None = None,
        backoff: float = DEFAULT_BACKOFF_S,
        max_backoff: float = DEFAULT_MAX_BACKOFF_S,
        jitter: float = 0.0,
        rng: random.Random | None = None,
        sleep: Callable[[float], object] = time.sleep,
        on_attempt: Callable[[DeliveryAttempt], object] | None = None,
    ) -> DeliveryAttempt:
        """Deliver, retrying failed attempts with exponential backoff; returns the last attempt.

        ``attempts=None`` uses ``retries_for(event)``. Every attempt reuses ``msg_id`` so the receiver can
        dedupe. ``jitter`` (a fraction, e.g. 0.1) stretches each delay by up to that much; pass ``rng`` for a
        reproducible schedule. ``on_attempt`` is called after every try; its exceptions are logged and do not
        stop delivery.
        """
        total = retries_for(event) if attempts is None else int(attempts)
        if total < 1:
            raise ValueError("attempts must be at least 1")
        result: DeliveryAttempt | None = None
        for n in range(1, total + 1):
            result = self.deliver(url, event, body, msg_id, attempt=n)
            if on_attempt is not None:
                try:
                    on_attempt(result)
                except Exception:  # noqa: BLE001 - a logging hiccup must not cost the n8n callback
                    log.exception("webhook on_attempt callback failed")
            if result.ok or result.final or n == total:
                break
            sleep(backoff_delay(n - 1, backoff, max_backoff, jitter, rng))
        assert result is not None
        return result
