"""`avatar pull`: copy finished videos from a (rented, soon destroyed) server to this machine.

Every succeeded prediction's video, thumbnail and metadata file not already present is downloaded to a
`.part` file, resumed with an HTTP Range request if one is left from an interrupted run, checked against the
sha256 the server recorded (for the video), and only then renamed into place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from ltx2.domain.digest import sha256_file


class PullError(RuntimeError):
    pass


@dataclass
class PullReport:
    downloaded: int = 0
    present: int = 0
    failed: int = 0


def _finished(client: httpx.Client) -> Iterator[dict]:
    url = "/v1/predictions?status=succeeded&limit=200"
    while url:
        response = client.get(url)
        if response.status_code == 401:
            raise PullError("the server wants an API key: pass --key or set AVATAR_API_KEY")
        response.raise_for_status()
        page = response.json()
        yield from page["results"]
        url = page.get("next")


def _fetch(client: httpx.Client, url: str, target: Path, sha256: str | None) -> None:
    part = target.with_name(target.name + ".part")
    offset = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    with client.stream("GET", url, headers=headers) as response:
        if response.status_code == 416:  # the .part is already whole
            pass
        elif response.status_code == 206:
            with part.open("ab") as f:
                for chunk in response.iter_bytes(1 << 20):
                    f.write(chunk)
        elif response.status_code == 200:
            with part.open("wb") as f:  # the server ignored the range: start over
                for chunk in response.iter_bytes(1 << 20):
                    f.write(chunk)
        else:
            raise PullError(f"GET {url}: HTTP {response.status_code}")
    if sha256 and sha256_file(part) != sha256:
        part.unlink()
        raise PullError(f"{target.name}: sha256 mismatch, the partial download was discarded (run again)")
    part.replace(target)


def pull_all(
    server: str, dest: Path, *, key: str | None = None, echo: Callable[[str], None] = print, timeout: float = 60.0
) -> PullReport:
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    report = PullReport()
    try:
        with httpx.Client(base_url=server.rstrip("/"), headers=headers, timeout=timeout) as client:
            for job in _finished(client):
                out = job.get("output") or {}
                for field in ("video", "thumbnail", "metadata_file"):
                    name, url = out.get(field), out.get(f"{field}_url")
                    if not name or not url or "/" in name or name.startswith("."):
                        continue
                    target = dest / name
                    checksum = out.get("sha256") if field == "video" else None
                    if target.exists() and (checksum is None or sha256_file(target) == checksum):
                        report.present += 1
                        continue
                    try:
                        _fetch(client, url, target, checksum)
                        report.downloaded += 1
                        echo(f"downloaded {name}")
                    except (PullError, httpx.HTTPError) as exc:
                        report.failed += 1
                        echo(f"failed {name}: {exc}")
    except httpx.HTTPError as exc:
        raise PullError(f"cannot reach {server}: {exc}") from exc
    return report
