"""Photo intake for face-profile training: decode, orient, find exactly one face, crop around it.

Every photo is checked and every problem is reported at once, so a user fixes the whole set in one go.
Faces are found with OpenCV's frontal-face Haar cascade, which ships inside `opencv-python-headless`
(no model download). Detection runs on a copy scaled to a fixed working size, so the cascade parameters
below behave the same for a 512 px scan and a 4000 px phone photo; boxes are mapped back to the original.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ltx2.domain.limits import MAX_PHOTO_SIDE, MAX_PHOTOS, MIN_PHOTOS
from ltx2.media import images
from ltx2.media.images import ImageRejected

# Detection is tuned at this working size (long side, pixels); see module docstring.
DETECT_LONG_SIDE = 640
# Cascade parameters: scale step and how many overlapping hits confirm a face. Tuned on scikit-image's
# astronaut photo and variants of it (flips, ±6° rotations, brightness ±25 %, crops, 300–2048 px): exactly one
# face each; a side-by-side collage of two gives two; coffee, cat and cameraman photos give none. Fewer
# neighbours let background texture through as extra "faces"; a larger scale step misses rotated faces.
SCALE_FACTOR = 1.1
MIN_NEIGHBORS = 8
MIN_DETECT_FRACTION = 0.04  # smallest face searched for, as a fraction of the working image's short side
# Hits under half the main face's side are background people or texture, not a second subject.
SECONDARY_FACE_RATIO = 0.5
# Crop: the face box enlarged this much, so hair, jaw and a little shoulder are in the training image.
CROP_MARGIN = 1.8
# Crops are stored at most this large; training resizes them to its own resolution anyway.
MAX_CROP_SIDE = 1024
# `full` is kept at most this large (long side): ample for 512 px training re-crops, and ten 24 MP photos
# then hold ~120 MB instead of ~700 MB. Face sizes are still checked in the original photo's pixels.
MAX_FULL_SIDE = MAX_PHOTO_SIDE
# Sharpness is measured on the face box resized to this side, so it does not depend on photo resolution.
_SHARPNESS_SIDE = 128
# Faces at least this large (original pixels) are not penalised in best_photo(); smaller ones are, linearly.
_FULL_SCORE_FACE = 256


@dataclass(frozen=True)
class PhotoProblem:
    name: str
    reason: str


class PhotosRejected(ValueError):
    """The photo set cannot be used; `.problems` lists every bad photo with its reason."""

    def __init__(self, message: str, problems: list[PhotoProblem]):
        super().__init__(message)
        self.problems = problems


@dataclass
class FacePhoto:
    name: str
    crop: Image.Image  # RGB, square, the face centred (unless the photo's edge forbids) with margin
    full: Image.Image  # the original, EXIF-oriented, RGB, at most MAX_FULL_SIDE on the long side
    face_box: tuple[int, int, int, int]  # x, y, width, height in `full` pixels
    sharpness: float  # variance of the Laplacian of the face, at a fixed size (higher is sharper)
    score: float  # what best_photo() ranks by (see there)

    @property
    def face_side(self) -> int:
        return max(self.face_box[2], self.face_box[3])


def _cascade():
    import cv2

    path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise RuntimeError(f"OpenCV's face cascade could not be loaded from {path}")
    return cascade


_CASCADE = None
# One classifier is shared; OpenCV does not promise detectMultiScale is safe on one instance from several
# threads (the API validates uploads in a thread pool), so calls take turns.
_CASCADE_LOCK = threading.Lock()


def detect_faces(image: Image.Image) -> list[tuple[int, int, int, int]]:
    """Face boxes (x, y, w, h) in `image` pixels, largest first."""
    import cv2

    global _CASCADE
    scale = DETECT_LONG_SIDE / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    work = image.convert("L").resize(size, Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.BILINEAR)
    gray = cv2.equalizeHist(np.asarray(work))
    min_side = max(20, int(min(gray.shape) * MIN_DETECT_FRACTION))
    with _CASCADE_LOCK:
        if _CASCADE is None:
            _CASCADE = _cascade()
        found = _CASCADE.detectMultiScale(
            gray, scaleFactor=SCALE_FACTOR, minNeighbors=MIN_NEIGHBORS, minSize=(min_side, min_side)
        )
    boxes = [
        (round(x / scale), round(y / scale), round(w / scale), round(h / scale))
        for x, y, w, h in np.asarray(found).reshape(-1, 4)
    ]
    return sorted(boxes, key=lambda b: b[2] * b[3], reverse=True)


def face_crop(
    image: Image.Image,
    box: tuple[int, int, int, int],
    *,
    margin: float = CROP_MARGIN,
    shift: tuple[float, float] = (0.0, 0.0),
    max_side: int | None = MAX_CROP_SIDE,
) -> Image.Image:
    """A square crop around `box` enlarged by `margin`, moved by `shift` (fractions of the box side).

    Near an edge the square is shrunk to fit and slid inside the photo rather than padded: invented border
    pixels would be learned as part of the subject. The face then sits a little off centre, but whole.
    """
    x, y, w, h = box
    side = min(max(w, h) * margin, image.width, image.height)
    cx = x + w / 2 + shift[0] * max(w, h)
    cy = y + h / 2 + shift[1] * max(w, h)
    left = min(max(cx - side / 2, 0.0), image.width - side)
    top = min(max(cy - side / 2, 0.0), image.height - side)
    side_px = max(1, int(side))
    left_px, top_px = int(round(left)), int(round(top))
    left_px = min(left_px, image.width - side_px)
    top_px = min(top_px, image.height - side_px)
    crop = image.crop((left_px, top_px, left_px + side_px, top_px + side_px))
    if max_side is not None and side_px > max_side:
        crop = crop.resize((max_side, max_side), Image.Resampling.LANCZOS)
    return crop


def _sharpness(image: Image.Image, box: tuple[int, int, int, int]) -> float:
    import cv2

    x, y, w, h = box
    face = image.crop((x, y, x + w, y + h)).convert("L")
    face = face.resize((_SHARPNESS_SIDE, _SHARPNESS_SIDE), Image.Resampling.LANCZOS)
    return float(cv2.Laplacian(np.asarray(face, dtype=np.float32), cv2.CV_32F).var())


class _Bad(Exception):
    pass


def _read(source: bytes | Path) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    return Path(source).read_bytes()


def check_photo(name: str, source: bytes | Path, *, min_side: int = 256, min_face: int = 64) -> FacePhoto:
    """One photo: a FacePhoto, or _Bad with the reason."""
    try:
        data = _read(source)
    except OSError as exc:
        raise _Bad(f"cannot be read ({exc.strerror or exc.__class__.__name__})") from exc
    try:
        # The one allow-listed decoder: PNG/JPEG/WebP, header checked first, megapixel cap, bounded pool.
        full = images.decode(data)
    except ImageRejected as exc:
        raise _Bad(exc.reason) from None
    if min(full.size) < min_side:
        raise _Bad(f"too small ({full.width}x{full.height}): the shorter side must be at least {min_side} pixels")
    original_long_side = max(full.size)
    if original_long_side > MAX_FULL_SIDE:
        full.thumbnail((MAX_FULL_SIDE, MAX_FULL_SIDE), Image.Resampling.LANCZOS)
    to_original = original_long_side / max(full.size)
    faces = detect_faces(full)
    if not faces:
        raise _Bad("no face found: use a photo of one person facing the camera, face clearly visible")
    main = faces[0]
    others = [f for f in faces[1:] if max(f[2], f[3]) >= SECONDARY_FACE_RATIO * max(main[2], main[3])]
    if others:
        raise _Bad(f"{1 + len(others)} faces found: use photos with only the one person in them")
    face_px = round(max(main[2], main[3]) * to_original)
    if face_px < min_face:
        raise _Bad(
            f"face too small ({face_px} pixels across): it must be at least {min_face} "
            "pixels; move closer or crop the photo"
        )
    sharpness = _sharpness(full, main)
    score = sharpness * min(1.0, face_px / _FULL_SCORE_FACE)
    return FacePhoto(name=name, crop=face_crop(full, main), full=full, face_box=main, sharpness=sharpness, score=score)


def validate_photos(
    sources: list[tuple[str, bytes | Path]],
    *,
    min_photos: int = MIN_PHOTOS,
    max_photos: int = MAX_PHOTOS,
    min_side: int = 256,
    min_face: int = 64,
) -> list[FacePhoto]:
    """Check a set of (name, bytes-or-path) photos; every photo usable, or PhotosRejected listing them all.

    Nothing is written anywhere: the FacePhotos are in memory.
    """
    check_count(len(sources), min_photos=min_photos, max_photos=max_photos)
    # Every header before any pixels: photos whose header rules them out (type, megapixels) are never decoded.
    found = {i: reason for i, (_, source) in enumerate(sources) if (reason := header_problem(source))}
    photos: list[FacePhoto] = []
    for i, (name, source) in enumerate(sources):
        if i in found:
            continue
        try:
            photos.append(check_photo(name, source, min_side=min_side, min_face=min_face))
        except _Bad as bad:
            found[i] = str(bad)
    problems = [PhotoProblem(sources[i][0], found[i]) for i in sorted(found)]
    if problems:
        raise PhotosRejected(
            f"{len(problems)} of {len(sources)} photo(s) cannot be used: "
            + "; ".join(f"{p.name}: {p.reason}" for p in problems),
            problems,
        )
    return photos


def check_count(count: int, *, min_photos: int = MIN_PHOTOS, max_photos: int = MAX_PHOTOS) -> None:
    """The photo count, checked before anything is read or decoded."""
    if count < min_photos:
        raise PhotosRejected(f"{count} photo(s) given: at least {min_photos} are needed", [])
    if count > max_photos:
        raise PhotosRejected(f"{count} photos given: at most {max_photos} are allowed", [])


def header_problem(source: bytes | Path) -> str | None:
    """Why a photo's header alone rules it out (not PNG/JPEG/WebP, too many pixels), or None."""
    try:
        with images.open_image(_read(source)) as img:
            images.check_header(img)
    except ImageRejected as exc:
        return exc.reason
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc.__class__.__name__})"
    return None


def best_photo(photos: list[FacePhoto]) -> int:
    """Index of the photo to show for a profile (and never hold out of training).

    Rule: the highest `score` = face sharpness (variance of the Laplacian on the face resized to 128 px)
    × min(1, face side / 256 px). The sharpest face wins, but a face under 256 px across loses in proportion
    to its size, since it will be upscaled for training. Ties go to the earlier photo.
    """
    if not photos:
        raise ValueError("no photos")
    return max(range(len(photos)), key=lambda i: (photos[i].score, -i))
