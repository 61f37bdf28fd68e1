"""Hand-written movie fragments: Annex B to length-prefixed NAL units; moof data offsets land on the samples."""

from __future__ import annotations

import struct

import pytest

from comps.animation.fragments import NON_SYNC, Run, Sample, fragment, init_segment, length_prefixed


def test_annex_b_units_become_length_prefixed_whatever_their_start_codes() -> None:
    annex_b = b"\x00\x00\x00\x01\x67\xaa\x00\x00\x01\x68\xbb\xcc\x00\x00\x00\x01\x65\xdd"
    assert length_prefixed(annex_b) == (
        b"\x00\x00\x00\x02\x67\xaa" + b"\x00\x00\x00\x03\x68\xbb\xcc" + b"\x00\x00\x00\x02\x65\xdd"
    )


def test_each_runs_data_offset_points_at_its_first_samples_bytes() -> None:
    video = Run(1, 1024, [Sample(b"V0" * 10, 512), Sample(b"V1" * 3, 512, NON_SYNC)])
    audio = Run(2, 2048, [Sample(b"A0" * 7, 1024)])
    data = fragment(5, [video, Run(3, 0, []), audio])  # a track without samples is left out
    moof_size = struct.unpack(">I", data[:4])[0]
    assert data[4:8] == b"moof" and data[moof_size + 4 : moof_size + 8] == b"mdat"
    offsets = []
    position = data.find(b"trun")
    while position > 0:
        count, offset = struct.unpack(">Ii", data[position + 8 : position + 16])
        offsets.append((count, offset))
        position = data.find(b"trun", position + 4)
    assert offsets == [(2, moof_size + 8), (1, moof_size + 8 + 26)]
    assert data[offsets[1][1] : offsets[1][1] + 14] == b"A0" * 7
    assert struct.unpack(">I", data[data.find(b"mfhd") + 8 : data.find(b"mfhd") + 12])[0] == 5
    with pytest.raises(ValueError, match="at least one sample"):
        fragment(1, [Run(1, 0, [])])


def test_the_init_segment_is_known_once_the_moov_is_complete() -> None:
    ftyp = struct.pack(">I4s", 16, b"ftyp") + b"isom\x00\x00\x02\x00"
    moov = struct.pack(">I4s", 24, b"moov") + bytes(16)
    assert init_segment(ftyp + moov[:20]) is None
    assert init_segment(ftyp + moov + b"\x00\x00\x00\x08moof") == ftyp + moov
