"""The studio's only way to the server: HTTP to the Avatar API, every failure turned into plain words.

No Streamlit and no `ltx2` server code in here, so the studio can run on another machine than the API and
this module can be used (and tested) on its own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx

# Loopback answers a closed port at once; a short connect timeout keeps a page from hanging when the API host
# is unreachable. Reads get longer: a master reset may wait up to 30 s for a running job to stop.
CONNECT_TIMEOUT_S = 3.0
READ_TIMEOUT_S = 45.0


class ApiError(Exception):
    """A request failed; str() is a sentence a person can act on."""

    def __init__(
        self, message: str, *, status: int | None = None, detail: str | None = None, problems: list[dict] | None = None
    ):
        super().__init__(message)
        self.status = status
        self.detail = detail or message
        self.problems = problems or []  # e.g. rejected training photos: [{"photo": ..., "reason": ...}]


class ServerUnreachable(ApiError):
    """Nothing answers at the API URL (server down, wrong URL or port)."""


class AuthError(ApiError):
    """The server wants an API key, or refused the one sent."""


@dataclass
class Upload:
    name: str
    data: bytes
    mime: str = "application/octet-stream"


@dataclass
class ApiClient:
    base_url: str
    api_key: str | None = None
    timeout: httpx.Timeout = field(default_factory=lambda: httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S))

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")
        headers = {"X-API-Key": self.api_key} if self.api_key else {}
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=self.timeout)

    def close(self) -> None:
        self._http.close()

    # --- plumbing ---------------------------------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise ServerUnreachable(
                f"Cannot reach the Avatar server at {self.base_url}. Is it running (`avatar serve` or "
                "./scripts/launch_ltx2.sh)? If it listens elsewhere, set the API URL on the Server page "
                "or AVATAR_API_URL."
            ) from exc
        except httpx.TimeoutException as exc:
            raise ServerUnreachable(
                f"The Avatar server at {self.base_url} did not answer in time "
                f"({method} {path}). It may be overloaded; try again."
            ) from exc
        except httpx.HTTPError as exc:
            raise ServerUnreachable(f"Talking to the Avatar server at {self.base_url} failed: {exc}") from exc
        if response.status_code >= 400:
            raise self._error(response)
        return response

    def _error(self, response: httpx.Response) -> ApiError:
        status = response.status_code
        try:
            body = response.json()
        except (json.JSONDecodeError, ValueError):
            body = {}
        detail = (body.get("detail") if isinstance(body, dict) else None) or response.reason_phrase
        if not isinstance(detail, str):
            detail = json.dumps(detail)
        problems = body.get("problems") if isinstance(body, dict) else None
        if status == 401:
            return AuthError(
                "The server refused the request: the API key is missing or wrong. Set AVATAR_API_KEY (or enter "
                "the key on the Server page) to one of the server's AVATAR_API_KEYS.",
                status=status,
                detail=detail,
            )
        if status == 413:
            return ApiError(f"Too large for the server: {detail}.", status=status, detail=detail)
        if status >= 500:
            return ApiError(
                f"The server failed on this request (HTTP {status}): {detail}. Its log has the details.",
                status=status,
                detail=detail,
                problems=problems,
            )
        # 4xx problems carry a sentence written for people already (RFC 9457 detail); show it as is.
        return ApiError(_sentence(detail), status=status, detail=detail, problems=problems)

    def _json(self, method: str, path: str, **kwargs) -> Any:
        response = self._request(method, path, **kwargs)
        return response.json() if response.content else None

    # --- health -----------------------------------------------------------------------------------------

    def health(self) -> dict:
        return self._json("GET", "/health")

    def health_check(self) -> dict:
        return self._json("GET", "/health-check")

    def check_key(self) -> None:
        """Raises AuthError when the key is not accepted (/health and /health-check are open to all)."""
        self._json("GET", "/v1/workers")

    def requires_key(self) -> bool:
        """True when the server turns away a request without a key."""
        probe = ApiClient(self.base_url, None, self.timeout)
        try:
            probe.check_key()
            return False
        except AuthError:
            return True
        finally:
            probe.close()

    def workers(self) -> dict:
        return self._json("GET", "/v1/workers")

    def limits(self) -> dict:
        return self._json("GET", "/v1/limits")

    # --- predictions ------------------------------------------------------------------------------------

    def predictions(self, status: list[str] | None = None, limit: int = 50, cursor: str | None = None) -> dict:
        params: dict[str, Any] = {"limit": limit}
        if status:
            params["status"] = status
        if cursor:
            params["cursor"] = cursor
        return self._json("GET", "/v1/predictions", params=params)

    def count(self, kind: str) -> dict[str, int]:
        """How many predictions ("predictions") or trainings ("trainings") there are in each status, page by page."""
        counts: dict[str, int] = {}
        cursor: str | None = None
        while True:
            page = self._json("GET", f"/v1/{kind}", params={"limit": 200, **({"cursor": cursor} if cursor else {})})
            for job in page["results"]:
                counts[job["status"]] = counts.get(job["status"], 0) + 1
            nxt = page.get("next")
            cursor = httpx.URL(nxt).params.get("cursor") if nxt else None
            if not cursor:
                return counts

    def prediction(self, job_id: str) -> dict:
        return self._json("GET", f"/v1/predictions/{job_id}")

    def create_prediction(self, inp: dict, idempotency_key: str | None = None) -> dict:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return self._json("POST", "/v1/predictions", json={"input": inp}, headers=headers)

    def cancel(self, job_id: str) -> dict:
        return self._json("POST", f"/v1/predictions/{job_id}/cancel")

    def retry(self, job_id: str) -> dict:
        return self._json("POST", f"/v1/predictions/{job_id}/retry")

    def delete(self, job_id: str) -> None:
        self._request("DELETE", f"/v1/predictions/{job_id}")

    def trash(self) -> dict:
        """Deleted jobs that can still be restored, and for how many days the server keeps them."""
        return self._json("GET", "/v1/trash")

    def restore(self, job_id: str) -> dict:
        return self._json("POST", f"/v1/trash/{job_id}/restore")

    def retake_segment(
        self, job_id: str, number: int, text: str | None = None, idempotency_key: str | None = None
    ) -> dict:
        """A new prediction that makes segment `number` (1 = first) of a finished script again, optionally with
        new words; every other segment is reused as it is."""
        body = {"text": text} if text and text.strip() else {}
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return self._json("POST", f"/v1/predictions/{job_id}/segments/{int(number)}/retake", json=body, headers=headers)

    def finalize(
        self,
        job_id: str,
        mode: str = "two-stage",
        width: int | None = None,
        height: int | None = None,
        idempotency_key: str | None = None,
    ) -> dict:
        """A new prediction that renders a draft again at full size and quality, same seed and segments."""
        body: dict[str, Any] = {"mode": mode}
        if width is not None:
            body["width"] = width
        if height is not None:
            body["height"] = height
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return self._json("POST", f"/v1/predictions/{job_id}/finalize", json=body, headers=headers)

    # --- files ------------------------------------------------------------------------------------------

    def upload(self, upload: Upload) -> dict:
        return self._json("POST", "/v1/files", files={"file": (upload.name, upload.data, upload.mime)})

    def download(self, filename: str) -> bytes:
        return self._request("GET", f"/download/{filename}").content

    # --- face profiles ----------------------------------------------------------------------------------

    def start_training(
        self,
        name: str,
        photos: list[Upload],
        steps: int,
        rank: int | None = None,
        learning_rate: float | None = None,
        idempotency_key: str | None = None,
    ) -> dict:
        data: dict[str, Any] = {"name": name, "steps": str(steps)}
        if rank is not None:
            data["rank"] = str(rank)
        if learning_rate is not None:
            data["learning_rate"] = repr(learning_rate)
        files = [("photos", (p.name, p.data, p.mime)) for p in photos]
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return self._json("POST", "/v1/trainings", data=data, files=files, headers=headers)

    def trainings(self, limit: int = 20) -> dict:
        return self._json("GET", "/v1/trainings", params={"limit": limit})

    def training(self, job_id: str) -> dict:
        return self._json("GET", f"/v1/trainings/{job_id}")

    def cancel_training(self, job_id: str) -> dict:
        return self._json("POST", f"/v1/trainings/{job_id}/cancel")

    def profiles(self) -> list[dict]:
        return self._json("GET", "/v1/profiles")["results"]

    def profile_photo(self, name: str) -> bytes:
        return self._request("GET", f"/v1/profiles/{name}/photo").content

    def profile_preview(self, name: str) -> bytes:
        return self._request("GET", f"/v1/profiles/{name}/preview").content

    def delete_profile(self, name: str) -> None:
        self._request("DELETE", f"/v1/profiles/{name}")

    # --- workspace --------------------------------------------------------------------------------------

    def workspace_status(self) -> dict:
        return self._json("GET", "/workspace-status")

    def clean_workspace(self, include_outputs: bool = False) -> dict:
        return self._json("POST", "/clean-workspace", data={"include_outputs": str(include_outputs).lower()})

    def master_reset(self, confirm: str) -> dict:
        return self._json("POST", "/master-reset", data={"confirm": confirm})


def _sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return "The server rejected the request."
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?" else text + "."
