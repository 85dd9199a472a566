"""Upload validation: real files in, hostile files refused, nothing left behind."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image, ImageCms

from ltx2.services import uploads
from ltx2.services.uploads import (
    StoredFile,
    UploadError,
    UploadLimits,
    safe_child,
    store_audio,
    store_image,
    store_upload,
)
from tests.conftest import write_tone

REPO = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------- helpers


def image_bytes(fmt: str, size=(120, 90), color=(200, 40, 40), mode="RGB", **save) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, color).save(buf, fmt, **save)
    return buf.getvalue()


def split_image(size=(200, 100)) -> Image.Image:
    """Left half red, right half blue: shows which way a rotation went."""
    img = Image.new("RGB", size, (255, 0, 0))
    img.paste((0, 0, 255), (size[0] // 2, 0, size[0], size[1]))
    return img


def png_header_only(width: int, height: int) -> bytes:
    """A real, highly compressed 1-bit PNG of the given size (a decompression bomb).

    Rows are compressed one at a time so building it never holds the pixels.
    """

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    row = b"\0" * (1 + (width + 7) // 8)  # filter byte + packed bits
    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def encode_tone(path: Path, fmt: str, codec: str, seconds: float = 1.0, rate: int = 48000) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    signal = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)[None, :]
    with av.open(str(path), "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=rate, layout="mono")
        frame = av.AudioFrame.from_ndarray(signal, format="fltp", layout="mono")
        frame.sample_rate = rate
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def wav_bytes(tmp_path: Path, seconds: float) -> bytes:
    return write_tone(tmp_path / f"tone-{seconds}.wav", seconds=seconds).read_bytes()


def assert_refused(call, status: int) -> UploadError:
    with pytest.raises(UploadError) as info:
        call()
    err = info.value
    assert err.status == status, err.detail
    assert err.title and err.detail
    return err


def only_file(dest: Path) -> Path:
    files = list(dest.iterdir())  # includes dotfiles: no temp file may survive
    assert len(files) == 1, files
    return files[0]


def empty(dest: Path) -> bool:
    return not dest.exists() or list(dest.iterdir()) == []


@pytest.fixture
def dest(tmp_path) -> Path:
    return tmp_path / "uploads"


# --------------------------------------------------------------------------- module hygiene


def test_import_stays_torch_free():
    code = "import sys, ltx2.services.uploads; sys.exit('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr or "ltx2.services.uploads imported torch"


def test_upload_error_is_a_problem_document():
    err = UploadError(413, "Upload too large", "too big")
    assert isinstance(err, ValueError) and str(err) == "too big"
    assert err.problem() == {"type": "about:blank", "title": "Upload too large", "status": 413, "detail": "too big"}


# --------------------------------------------------------------------------- images


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "TIFF", "PPM"])
def test_formats_outside_the_allow_list_are_refused(dest, fmt):
    # PNG, JPEG and WebP only (ltx2.media.images): other Pillow decoders never see upload bytes.
    err = assert_refused(lambda: store_image(image_bytes(fmt), dest), 415)
    assert "PNG, JPEG, WebP" in err.detail
    assert empty(dest)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_image_formats_are_reencoded_to_png(dest, fmt):
    stored = store_image(image_bytes(fmt), dest)
    assert isinstance(stored, StoredFile)
    assert (stored.kind, stored.content_type, stored.width, stored.height) == ("image", "image/png", 120, 90)
    assert stored.path == only_file(dest) and stored.path.parent == dest
    assert stored.path.suffix == ".png" and len(stored.path.stem) == 32  # uuid4().hex
    data = stored.path.read_bytes()
    assert stored.size == len(data) and stored.sha256 == hashlib.sha256(data).hexdigest()
    with Image.open(stored.path) as out:
        assert (out.format, out.mode, out.size) == ("PNG", "RGB", (120, 90))
        r, g, b = out.getpixel((60, 45))
        assert r > 150 and g < 90 and b < 90


def test_exif_orientation_is_applied_and_metadata_stripped(dest):
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to display
    exif[0x013B] = "Jane Doe"  # Artist: personal data that must not be kept
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    buf = io.BytesIO()
    split_image((200, 100)).save(buf, "JPEG", quality=95, exif=exif, icc_profile=icc)

    stored = store_image(io.BytesIO(buf.getvalue()), dest)

    assert (stored.width, stored.height) == (100, 200)  # stored landscape, displayed portrait
    with Image.open(stored.path) as out:
        assert out.size == (100, 200)
        top, bottom = out.getpixel((50, 20)), out.getpixel((50, 180))
        assert top[0] > 200 and top[2] < 60  # the left (red) half is now on top
        assert bottom[2] > 200 and bottom[0] < 60
        assert "exif" not in out.info and "icc_profile" not in out.info
        assert not out.getexif() and not out.text
    raw = stored.path.read_bytes()
    assert b"Jane Doe" not in raw and b"eXIf" not in raw and b"iCCP" not in raw


def test_animated_webp_keeps_first_frame(dest):
    frames = [Image.new("RGB", (80, 80), c) for c in ((0, 255, 0), (255, 0, 0))]
    buf = io.BytesIO()
    frames[0].save(buf, "WEBP", save_all=True, append_images=frames[1:], duration=100, lossless=True)
    stored = store_image(buf.getvalue(), dest)
    with Image.open(stored.path) as out:
        assert out.getpixel((40, 40)) == (0, 255, 0)


def test_transparency_is_flattened_onto_white(dest):
    stored = store_image(image_bytes("PNG", mode="RGBA", color=(0, 0, 0, 0)), dest)
    with Image.open(stored.path) as out:
        assert out.mode == "RGB" and out.getpixel((5, 5)) == (255, 255, 255)


def test_16bit_greyscale_is_scaled_not_clipped(dest):
    buf = io.BytesIO()
    Image.fromarray(np.full((70, 70), 40000, np.uint16)).save(buf, "PNG")
    stored = store_image(buf.getvalue(), dest)
    with Image.open(stored.path) as out:
        assert out.getpixel((1, 1)) == (156, 156, 156)  # 40000 >> 8


def test_text_file_named_png_is_refused(dest, tmp_path):
    fake = tmp_path / "photo.png"
    fake.write_text("definitely not a picture\n" * 20)
    with open(fake, "rb") as f:
        assert_refused(lambda: store_image(f, dest), 415)
    assert empty(dest)
    err = assert_refused(lambda: store_upload(fake.read_bytes(), dest), 415)
    assert "PNG" in err.detail and "WAV" in err.detail  # says what is accepted
    assert empty(dest)


def test_truncated_jpeg_is_refused(dest):
    noise = np.random.default_rng(0).integers(0, 256, (256, 256, 3), np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noise).save(buf, "JPEG", quality=90)
    data = buf.getvalue()
    assert_refused(lambda: store_image(data[: len(data) // 2], dest), 422)
    assert empty(dest)


def test_image_over_pixel_limit_is_refused_before_decoding(dest, monkeypatch):
    # 8000x6000 = 48 MP: over our 40 MP limit, under Pillow's own threshold,
    # so only the header check stands between it and a 144 MB RGB buffer.
    data = png_header_only(8000, 6000)
    assert len(data) < 100_000
    loads = []
    monkeypatch.setattr(Image.Image, "load", lambda self, *a, **k: loads.append(self))
    err = assert_refused(lambda: store_image(data, dest), 413)
    assert "8000x6000" in err.detail
    assert loads == [] and empty(dest)


def test_decompression_bombs_never_allocate_pixels(tmp_path):
    # huge.png (400 MP) trips Pillow's own DecompressionBombError inside open(),
    # even when our limit is raised; big.png (48 MP) is caught by our header
    # check. A fresh process makes peak RSS measure only this work.
    bombs = tmp_path / "bombs"
    bombs.mkdir()
    (bombs / "huge.png").write_bytes(png_header_only(20000, 20000))
    (bombs / "big.png").write_bytes(png_header_only(8000, 6000))
    dest = tmp_path / "uploads"
    script = textwrap.dedent(
        f"""
        import resource
        from pathlib import Path
        from ltx2.services.uploads import UploadError, UploadLimits, store_image
        bombs, dest = Path({str(bombs)!r}), Path({str(dest)!r})
        cases = [("huge.png", UploadLimits()), ("huge.png", UploadLimits(max_image_pixels=10**9)),
                 ("big.png", UploadLimits())]
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        for name, limits in cases:
            try:
                store_image((bombs / name).read_bytes(), dest, limits)
                raise SystemExit(name + " was accepted")
            except UploadError as e:
                assert e.status == 413, (name, e.status)
        print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)
        """
    )
    result = subprocess.run([sys.executable, "-W", "ignore", "-c", script], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr + result.stdout
    assert float(result.stdout) < 32  # MB; the RGB pixels alone would be 1.2 GB / 144 MB
    assert empty(dest)


def test_oversize_image_bytes_are_refused(dest):
    limits = UploadLimits(max_image_bytes=10_000)
    data = image_bytes("PNG", size=(100, 100), compress_level=0)  # 30 KB
    assert_refused(lambda: store_image(data, dest, limits), 413)
    assert empty(dest)


def test_endless_stream_is_cut_off_at_the_cap(dest):
    class Endless(io.RawIOBase):
        """A client that never stops sending (and never said how much)."""

        def __init__(self):
            self.sent = 0

        def readable(self):
            return True

        def read(self, n=-1):
            n = 1 << 20 if n is None or n < 0 else n
            self.sent += n
            return b"\xff" * n

    stream = Endless()
    limits = UploadLimits(max_image_bytes=100_000)
    assert_refused(lambda: store_image(stream, dest, limits), 413)
    assert stream.sent <= limits.max_image_bytes + 1
    assert empty(dest)


@pytest.mark.parametrize("size", [(32, 32), (64, 63), (1000, 10)])
def test_too_small_image_is_refused(dest, size):
    assert_refused(lambda: store_image(image_bytes("PNG", size=size), dest), 422)
    assert empty(dest)


def test_smallest_allowed_image_is_accepted(dest):
    stored = store_image(image_bytes("PNG", size=(64, 64)), dest)
    assert (stored.width, stored.height) == (64, 64)


def test_empty_upload_is_refused(dest):
    assert_refused(lambda: store_image(b"", dest), 422)
    assert empty(dest)


# --------------------------------------------------------------------------- audio


def test_wav_is_kept_verbatim_with_duration(dest, tmp_path):
    data = wav_bytes(tmp_path, 1.5)
    stored = store_audio(io.BytesIO(data), dest)
    assert (stored.kind, stored.content_type, stored.path.suffix) == ("audio", "audio/wav", ".wav")
    assert stored.duration == pytest.approx(1.5, abs=0.01)
    assert stored.path == only_file(dest)
    assert stored.path.read_bytes() == data
    assert stored.size == len(data) and stored.sha256 == hashlib.sha256(data).hexdigest()
    assert stored.width is None and stored.height is None


@pytest.mark.parametrize(
    "fmt, codec, rate, suffix, content_type",
    [
        ("mp3", "libmp3lame", 44100, ".mp3", "audio/mpeg"),
        ("ogg", "libopus", 48000, ".ogg", "audio/ogg"),
        ("ipod", "aac", 44100, ".m4a", "audio/mp4"),
        ("flac", "flac", 44100, ".flac", "audio/flac"),
        ("webm", "libopus", 48000, ".webm", "audio/webm"),
    ],
)
def test_compressed_audio_is_accepted(dest, tmp_path, fmt, codec, rate, suffix, content_type):
    src = encode_tone(tmp_path / f"tone.{fmt}", fmt, codec, seconds=1.0, rate=rate)
    stored = store_audio(src.read_bytes(), dest)
    assert (stored.path.suffix, stored.content_type) == (suffix, content_type)
    assert stored.duration == pytest.approx(1.0, abs=0.1)
    assert stored.path.read_bytes() == src.read_bytes()
    assert only_file(dest) == stored.path


@pytest.mark.parametrize(
    "data",
    [
        np.random.default_rng(1).bytes(8192),
        b"PK\x03\x04" + bytes(4000),
        b"\x7fELF\x02\x01\x01" + bytes(4000),
    ],
    ids=["random", "zip", "elf"],
)
def test_non_audio_binary_is_refused(dest, data):
    assert_refused(lambda: store_audio(data, dest), 415)
    assert empty(dest)
    assert_refused(lambda: store_upload(data, dest), 415)
    assert empty(dest)


def test_image_sent_as_audio_is_refused(dest):
    assert_refused(lambda: store_audio(image_bytes("PNG"), dest), 415)
    assert empty(dest)


@pytest.mark.parametrize(
    "playlist",
    [
        b"ffconcat version 1.0\nfile victim.wav\n",
        b"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nvictim.wav\n#EXT-X-ENDLIST\n",
    ],
    ids=["ffconcat", "hls"],
)
def test_playlists_are_not_followed(dest, tmp_path, playlist):
    # Unrestricted, FFmpeg's concat demuxer opens this and plays another
    # user's upload from the same folder; the demuxer whitelist refuses it.
    dest.mkdir()
    victim = dest / "victim.wav"
    victim.write_bytes(wav_bytes(tmp_path, 1.0))
    upload = tmp_path / "playlist.part"
    upload.write_bytes(playlist)
    shutil.copy(victim, tmp_path / "victim.wav")
    assert uploads._open_audio(upload) is None  # refused before any demuxer runs
    assert_refused(lambda: store_audio(playlist, dest), 415)
    assert_refused(lambda: store_upload(playlist, dest), 415)
    assert list(dest.iterdir()) == [victim]


def test_too_long_audio_is_refused(dest, tmp_path):
    limits = UploadLimits(max_audio_seconds=2)
    assert_refused(lambda: store_audio(wav_bytes(tmp_path, 3.0), dest, limits), 422)
    assert empty(dest)
    assert store_audio(wav_bytes(tmp_path, 2.0), dest, limits).duration == pytest.approx(2.0)


def test_audio_without_samples_is_refused(dest, tmp_path):
    assert_refused(lambda: store_audio(wav_bytes(tmp_path, 0.0), dest), 422)
    assert empty(dest)


def test_oversize_audio_is_refused(dest, tmp_path):
    limits = UploadLimits(max_audio_bytes=10_000)
    assert_refused(lambda: store_audio(wav_bytes(tmp_path, 1.0), dest, limits), 413)
    assert empty(dest)


# --------------------------------------------------------------------------- sniffing


def test_store_upload_sniffs_each_kind(dest, tmp_path):
    from starlette.datastructures import UploadFile

    photo = UploadFile(io.BytesIO(image_bytes("JPEG")), filename="voice.wav")  # the name lies
    assert store_upload(photo, dest).kind == "image"
    voice = store_upload(wav_bytes(tmp_path, 1.0), dest)
    assert voice.kind == "audio" and voice.duration == pytest.approx(1.0)
    assert len(list(dest.iterdir())) == 2


def test_store_upload_applies_the_per_kind_byte_limit(dest, tmp_path):
    limits = UploadLimits(max_image_bytes=10_000, max_audio_bytes=100_000)
    assert_refused(lambda: store_upload(image_bytes("PNG", size=(100, 100), compress_level=0), dest, limits), 413)
    limits = UploadLimits(max_image_bytes=100_000, max_audio_bytes=10_000)
    assert_refused(lambda: store_upload(wav_bytes(tmp_path, 1.0), dest, limits), 413)
    assert empty(dest)


# --------------------------------------------------------------------------- safe_child


@pytest.fixture
def served(tmp_path) -> Path:
    root = tmp_path / "served"
    (root / "sub").mkdir(parents=True)
    (root / "a.png").write_bytes(b"a")
    (root / "sub" / "b.png").write_bytes(b"b")
    (root / ".env").write_text("SECRET=1")
    (root / "etc").symlink_to("/etc")
    (root / "passwd").symlink_to("/etc/passwd")
    (root / "alias.png").symlink_to(root / "a.png")
    (root / "env-link").symlink_to(root / ".env")
    (root / "loop").symlink_to(root / "loop")
    os.mkfifo(root / "pipe")
    (tmp_path / "outside.png").write_bytes(b"o")
    return root


@pytest.mark.parametrize(
    "name",
    [
        "../x",
        "..",
        "a/../../x",
        "sub/../a.png",
        "/etc/passwd",
        "C:\\x",
        "C:x",
        "..\\x",
        "a\\b",
        "../outside.png",
        "%2e%2e/x",
        "%2e%2e%2f",
        "%252e%252e%252f",
        "a.png%00",
        "\x00",
        "a.png\x00.txt",
        ".env",
        "sub/.hidden",
        ".",
        "./a.png",
        "",
        "a.png/",
        "sub//b.png",
        " a.png",
        "etc",
        "etc/passwd",
        "passwd",
        "env-link",
        "loop",
        "pipe",
        "sub",
        "missing.png",
        "a.png:stream",
        "\udcff.png",
        "x" * 300,
        "a/" * 600 + "b",
    ],
)
def test_safe_child_refuses(served, name):
    assert safe_child(served, name) is None


@pytest.mark.parametrize("name, expected", [("a.png", "a.png"), ("sub/b.png", "sub/b.png"), ("alias.png", "a.png")])
def test_safe_child_accepts_plain_files(served, name, expected):
    assert safe_child(served, name) == (served / expected).resolve()
    assert safe_child(str(served), name) == (served / expected).resolve()


@pytest.mark.parametrize("name", [None, 42, b"a.png", Path("a.png")])
def test_safe_child_refuses_non_strings(served, name):
    assert safe_child(served, name) is None


def test_safe_child_with_missing_root(tmp_path):
    assert safe_child(tmp_path / "nope", "a.png") is None
