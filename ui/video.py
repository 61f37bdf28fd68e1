"""Join the answer's video segments into one mp4 by remuxing (no re-encode, no subprocess)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av


def join_segments(segments: list[Path], target: Path) -> Path:
    """Concatenate mp4 segments that share codecs and settings (the animation service makes them so).

    Packets are copied with their timestamps shifted by the running end of the previous segment, per
    stream, so audio and video stay in sync across the joins.
    """
    if not segments:
        raise ValueError("no segments to join")
    if len(segments) == 1:
        target.write_bytes(segments[0].read_bytes())
        return target
    with av.open(str(segments[0])) as first, av.open(str(target), mode="w", format="mp4") as out:
        outputs: dict[str, Any] = {}
        for stream in first.streams:
            if stream.type in ("video", "audio"):
                outputs[stream.type] = out.add_stream_from_template(stream)
        offsets = dict.fromkeys(outputs, 0.0)  # seconds already written per stream type
        last_dts: dict[str, int] = {}  # per output stream, in its input time base
        for path in segments:
            with av.open(str(path)) as source:
                ends = dict(offsets)
                for packet in source.demux():
                    kind = packet.stream.type
                    if kind not in outputs or packet.dts is None:
                        continue
                    time_base = packet.stream.time_base
                    assert time_base is not None, "a demuxed stream always has a time base"
                    shift = round(offsets[kind] / time_base)
                    dts = packet.dts + shift
                    # AAC priming gives each segment's first audio packet a negative dts; keep dts
                    # strictly increasing across a join, as the muxer requires.
                    if kind in last_dts and dts <= last_dts[kind]:
                        shift += last_dts[kind] + 1 - dts
                        dts = last_dts[kind] + 1
                    last_dts[kind] = dts
                    packet.pts = None if packet.pts is None else max(packet.pts + shift, dts)
                    packet.dts = dts
                    if packet.pts is not None:
                        end = float((packet.pts + (packet.duration or 0)) * time_base)
                        ends[kind] = max(ends[kind], end)
                    packet.stream = outputs[kind]
                    out.mux(packet)
                # Both streams continue from the longer of the two, so they stay aligned.
                joined_end = max(ends.values())
                offsets = dict.fromkeys(offsets, joined_end)
    return target
