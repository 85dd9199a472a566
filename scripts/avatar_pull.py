#!/usr/bin/env python3
"""Copy finished avatar videos from a (rented, soon destroyed) server to this computer.

One file, Python 3.8+ standard library only: runs on Windows, macOS and Linux without installing anything
(no torch, no project install). For every succeeded prediction it downloads the video, thumbnail, metadata
file and caption files (SRT/VTT) that are not already in --dest. Each file goes to NAME.part first; an
interrupted run resumes it with an HTTP Range request; the video is checked against the sha256 the server
recorded; only then is the file renamed into place. Running it again downloads only what is new.

    python avatar_pull.py --server http://127.0.0.1:8000 --dest avatar-videos [--key KEY]

--key defaults to the AVATAR_API_KEY environment variable. Exit status: 0 all done, 1 some file failed,
2 the server could not be listed (unreachable, wrong key).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

CHUNK = 1 << 20
# A name the server gives must be a plain file name: never a path that could write outside --dest.
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")


class PullError(Exception):
    pass


class Server:
    def __init__(self, base: str, key: str | None, timeout: float):
        self.base = base.rstrip("/")
        self.headers = {"Accept": "application/json", "User-Agent": "avatar-pull/1"}
        if key:
            self.headers["Authorization"] = f"Bearer {key}"
        self.timeout = timeout

    def url(self, link: str) -> str:
        """The server's links carry its own idea of its address (often 127.0.0.1 on the far side of an SSH
        tunnel, or 0.0.0.0): keep their path and query, use the address this computer reaches it at."""
        parts = urllib.parse.urlsplit(link)
        return self.base + parts.path + (f"?{parts.query}" if parts.query else "")

    def open(self, link: str, headers: dict | None = None):
        request = urllib.request.Request(self.url(link), headers={**self.headers, **(headers or {})})
        return urllib.request.urlopen(request, timeout=self.timeout)

    def succeeded(self):
        link = "/v1/predictions?status=succeeded&limit=200"
        while link:
            try:
                with self.open(link) as response:
                    page = json.load(response)
            except urllib.error.HTTPError as exc:
                if exc.code == 401:
                    raise PullError("the server wants an API key: pass --key or set AVATAR_API_KEY") from exc
                raise PullError(f"listing predictions: HTTP {exc.code} {exc.reason}") from exc
            except (urllib.error.URLError, OSError) as exc:
                raise PullError(f"cannot reach {self.base}: {getattr(exc, 'reason', exc)}") from exc
            yield from page.get("results") or []
            link = page.get("next")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def wanted_files(prediction: dict):
    """(name, link, sha256 or None) for each file of a finished prediction."""
    out = prediction.get("output") or {}
    for field in ("video", "thumbnail", "metadata_file"):
        if out.get(field) and out.get(f"{field}_url"):
            yield out[field], out[f"{field}_url"], out.get("sha256") if field == "video" else None
    captions, links = out.get("captions") or {}, out.get("captions_urls") or {}
    for fmt, name in sorted(captions.items()):
        if links.get(fmt):
            yield name, links[fmt], None


def fetch(server: Server, link: str, target: Path, sha256: str | None) -> str:
    """Download `link` into `target` through target.part; returns how ("downloaded", "resumed at N bytes")."""
    part = target.with_name(target.name + ".part")
    offset = part.stat().st_size if part.exists() else 0
    how = "downloaded"
    try:
        response = server.open(link, {"Range": f"bytes={offset}-"} if offset else None)
    except urllib.error.HTTPError as exc:
        if exc.code != 416:
            raise PullError(f"HTTP {exc.code} {exc.reason}") from exc
        # The .part is at least as long as the file: whole if the lengths agree, otherwise start over.
        total = (exc.headers.get("Content-Range") or "").rpartition("/")[2]
        if total != str(offset):
            part.unlink()
            return fetch(server, link, target, sha256)
        response, how = None, f"resumed at {offset} bytes (already whole)"
    if response is not None:
        with response:
            status = response.status
            if status == 206 and not (response.headers.get("Content-Range") or "").startswith(f"bytes {offset}-"):
                status = -1  # a range we did not ask for: appending it would corrupt the file
            if status == 206:
                how, mode = f"resumed at {offset} bytes", "ab"
            elif status == 200:
                mode = "wb"  # no range (or none honoured): the whole file again
            else:
                raise PullError(
                    f"the server answered the range request with HTTP {response.status} "
                    f"{response.headers.get('Content-Range')!r}"
                )
            with part.open(mode) as f:
                for block in iter(lambda: response.read(CHUNK), b""):
                    f.write(block)
    if sha256 and sha256_of(part) != sha256.lower():
        part.unlink()
        raise PullError("sha256 mismatch: the partial download was discarded")
    os.replace(part, target)
    return how


def pull(server: Server, dest: Path, echo=print) -> tuple[int, int, int]:
    """Returns (downloaded, already present, failed)."""
    dest.mkdir(parents=True, exist_ok=True)
    downloaded = present = failed = 0
    for prediction in server.succeeded():
        for name, link, sha256 in wanted_files(prediction):
            if not SAFE_NAME.match(name):
                echo(f"skipped {name!r}: not a plain file name")
                failed += 1
                continue
            target = dest / name
            if target.exists() and (sha256 is None or sha256_of(target) == sha256.lower()):
                present += 1
                continue
            for attempt in (1, 2):  # a .part that does not check out is thrown away and fetched once more
                try:
                    how = fetch(server, link, target, sha256)
                    echo(f"{how}: {name}")
                    downloaded += 1
                    break
                except (PullError, urllib.error.URLError, OSError) as exc:
                    reason = getattr(exc, "reason", exc)
                    if attempt == 2 or not isinstance(exc, PullError) or "sha256" not in str(exc):
                        echo(f"failed {name}: {reason}")
                        failed += 1
                        break
                    echo(f"{name}: {reason}; downloading it again")
    return downloaded, present, failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--server",
        default=os.environ.get("AVATAR_SERVER", "http://127.0.0.1:8000"),
        help="the API's address as this computer reaches it, e.g. through an SSH tunnel "
        "(default: $AVATAR_SERVER or http://127.0.0.1:8000)",
    )
    parser.add_argument(
        "--key",
        default=os.environ.get("AVATAR_API_KEY"),
        help="API key, if the server needs one (default: $AVATAR_API_KEY)",
    )
    parser.add_argument("--dest", type=Path, default=Path("avatar-videos"), help="folder to download into")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds without data before giving up")
    args = parser.parse_args(argv)
    try:
        downloaded, present, failed = pull(Server(args.server, args.key, args.timeout), args.dest)
    except PullError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{downloaded} downloaded, {present} already present, {failed} failed -> {args.dest}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
