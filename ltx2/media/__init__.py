"""Media I/O for generated avatars: single-pass MP4 encoding, probing, audio input."""

from ltx2.domain.digest import sha256_file

from .encode import (
    MediaError,
    encode_mp4,
    encode_mp4_overlapped,
    feed_encoder,
    read_audio,
    thumbnail_from_mp4,
    write_thumbnail,
)
from .probe import MediaInfo, decode_frames, probe

__all__ = [
    "encode_mp4",
    "encode_mp4_overlapped",
    "feed_encoder",
    "write_thumbnail",
    "thumbnail_from_mp4",
    "read_audio",
    "probe",
    "MediaInfo",
    "decode_frames",
    "MediaError",
    "sha256_file",
]
