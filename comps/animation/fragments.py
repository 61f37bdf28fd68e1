"""ISO BMFF movie fragments written by hand: a moof + mdat holding exactly the samples given, when asked.

libavformat's mp4 muxer closes a fragment only when the next keyframe arrives (PyAV exposes no
flush), so a live stream's last frames would wait for frames that do not exist yet. These few
boxes are enough for a fragmented MP4 whose init segment (ftyp + moov, with its trex defaults and
edit lists) comes from libavformat: per track a `traf` with `tfhd` (default-base-is-moof: data
offsets count from the moof), `tfdt` (the first sample's decode time) and one `trun` carrying
every sample's duration, size and flags, then one `mdat` with the samples, track after track.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

SYNC = 0x02000000  # sample_depends_on = 2: decodes on its own (an IDR frame; every AAC frame)
NON_SYNC = 0x01010000  # sample_depends_on = 1 and sample_is_non_sync_sample
_DEFAULT_BASE_IS_MOOF = 0x020000
_TRUN_FLAGS = 0x000001 | 0x000100 | 0x000200 | 0x000400  # data offset; each sample's duration, size, flags
_START_CODE = b"\x00\x00\x01"


@dataclass(frozen=True)
class Sample:
    """One coded frame: its bytes as stored in mdat, its duration in the track's timescale, its flags."""

    data: bytes
    duration: int
    flags: int = SYNC


@dataclass(frozen=True)
class Run:
    """One track's samples in a fragment, the first decoded at `decode_time` (track timescale)."""

    track_id: int
    decode_time: int
    samples: Sequence[Sample]


def box(kind: bytes, *parts: bytes) -> bytes:
    """An ISO BMFF box: 32-bit size, four-character type, body."""
    body = b"".join(parts)
    return struct.pack(">I4s", 8 + len(body), kind) + body


def full_box(kind: bytes, version: int, flags: int, *parts: bytes) -> bytes:
    """A full box: a box whose body starts with a version byte and 24 bits of flags."""
    return box(kind, struct.pack(">I", (version << 24) | flags), *parts)


def fragment(sequence: int, runs: Sequence[Run]) -> bytes:
    """The moof + mdat for `runs` (tracks without samples are left out); `sequence` counts fragments from 1."""
    runs = [run for run in runs if run.samples]
    if not runs:
        raise ValueError("a fragment needs at least one sample")
    # The moof's size does not depend on the data offsets (fixed-width fields): build it once with
    # zeros to learn it, then with each run's offset into the mdat that follows.
    offsets = [0] * len(runs)
    size = len(_moof(sequence, runs, offsets))
    position = size + 8  # past the moof and the mdat's header
    for k, run in enumerate(runs):
        offsets[k] = position
        position += sum(len(sample.data) for sample in run.samples)
    mdat = box(b"mdat", *(sample.data for run in runs for sample in run.samples))
    return _moof(sequence, runs, offsets) + mdat


def _moof(sequence: int, runs: Sequence[Run], offsets: Sequence[int]) -> bytes:
    trafs = []
    for run, offset in zip(runs, offsets, strict=True):
        entries = b"".join(struct.pack(">III", s.duration, len(s.data), s.flags) for s in run.samples)
        trafs.append(
            box(
                b"traf",
                full_box(b"tfhd", 0, _DEFAULT_BASE_IS_MOOF, struct.pack(">I", run.track_id)),
                full_box(b"tfdt", 1, 0, struct.pack(">Q", run.decode_time)),
                full_box(b"trun", 0, _TRUN_FLAGS, struct.pack(">Ii", len(run.samples), offset), entries),
            )
        )
    return box(b"moof", full_box(b"mfhd", 0, 0, struct.pack(">I", sequence)), *trafs)


def length_prefixed(annex_b: bytes) -> bytes:
    """An H.264 access unit from Annex B (start codes) to the MP4 form (each NAL unit after its 4-byte length)."""
    units, start = [], annex_b.find(_START_CODE)
    while start >= 0:
        begin = start + len(_START_CODE)
        nxt = annex_b.find(_START_CODE, begin)
        end = len(annex_b) if nxt < 0 else nxt
        unit = annex_b[begin:end]
        if nxt >= 0 and unit.endswith(b"\x00"):  # the next start code was a 4-byte one
            unit = unit[:-1]
        if unit:
            units.append(struct.pack(">I", len(unit)) + unit)
        start = nxt
    return b"".join(units)


def init_segment(data: bytes) -> bytes | None:
    """The ftyp + moov at the start of a fragmented MP4, once `data` holds all of them (else None)."""
    position = 0
    while position + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[position : position + 8])
        if size < 8 or position + size > len(data):
            return None
        position += size
        if kind == b"moov":
            return data[:position]
    return None


def timescales(init: bytes) -> dict[int, int]:
    """Each track's timescale (its mdhd) by track id (its tkhd), from an init segment."""
    found: dict[int, int] = {}
    for trak in _children(_child(init, b"moov"), b"trak"):
        tkhd = _child(trak, b"tkhd")
        track_id = struct.unpack(">I", tkhd[12:16] if tkhd[0] == 0 else tkhd[20:24])[0]
        mdhd = _child(_child(trak, b"mdia"), b"mdhd")
        found[track_id] = struct.unpack(">I", mdhd[12:16] if mdhd[0] == 0 else mdhd[20:24])[0]
    return found


def _children(data: bytes, kind: bytes) -> list[bytes]:
    """The bodies of the boxes of type `kind` directly inside `data`."""
    found, position = [], 0
    while position + 8 <= len(data):
        size, this = struct.unpack(">I4s", data[position : position + 8])
        if size < 8:
            break
        if this == kind:
            found.append(data[position + 8 : position + size])
        position += size
    return found


def _child(data: bytes, kind: bytes) -> bytes:
    found = _children(data, kind)
    if not found:
        raise ValueError(f"no {kind.decode()} box")
    return found[0]
