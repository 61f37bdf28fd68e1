"""The four services and the gateway as real `avatarchat serve` processes, each one killable, pausable, restartable.

Built on `support.processes` (start, readiness polling, clean stop). Each process keeps its port across
restarts (the gateway points at it), runs with its own TMPDIR (what is left in there is a temp file it
did not remove), and is read from /proc: peak RSS, open file descriptors, threads, CPU time.

The models are the real small ones: faster-whisper `embedded:tiny.en`, the embedded SmolLM2-135M
GGUF, the embedded Piper voice, and Wav2Lip with the suite's deterministic fixture weights.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from support.processes import ServiceProcess, ServiceProcesses, free_port

SERVICES = ("asr", "llm", "tts", "animation")
SHARED = Path(__file__).resolve().parents[2].parent / "shared"
READY_TIMEOUT_S = 600.0  # loading every model on two busy cores; a generous deadline, not a measurement


@dataclass
class Node:
    """One process of the stack under its fixed name and port; `current` is the running incarnation."""

    name: str
    port: int
    env: dict[str, str]
    tmp: Path
    current: ServiceProcess | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def process(self) -> subprocess.Popen[bytes]:
        assert self.current is not None, f"{self.name} was never started"
        return self.current.process

    @property
    def pid(self) -> int:
        assert self.running(), f"{self.name} is not running"
        return self.process.pid

    def running(self) -> bool:
        return self.current is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown, no clean-up, like a crash or the OOM killer."""
        self.process.kill()
        self.process.wait(timeout=30)

    def pause(self) -> None:
        """SIGSTOP: the kernel still accepts connections into the listen backlog; nothing answers."""
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def peak_rss_bytes(self) -> int:
        """Peak resident set size since the process started (VmHWM)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmHWM in /proc/<pid>/status")

    def cpu_seconds(self) -> float:
        times = psutil.Process(self.pid).cpu_times()
        return float(times.user + times.system)

    def open_fds(self) -> list[str]:
        """What each open descriptor points at (sockets as `socket:[inode]`)."""
        folder = Path(f"/proc/{self.pid}/fd")
        targets = []
        for fd in os.listdir(folder):
            with contextlib.suppress(FileNotFoundError):  # closed while listing
                targets.append(os.readlink(folder / fd))
        return sorted(targets)

    def threads(self) -> int:
        return psutil.Process(self.pid).num_threads()

    def temp_files(self) -> list[str]:
        """Everything under this process's TMPDIR, as relative paths."""
        return sorted(str(path.relative_to(self.tmp)) for path in self.tmp.rglob("*"))

    def log_tail(self) -> str:
        return self.current.log_tail() if self.current is not None else f"{self.name}: never started"


def service_env(folder: Path, model_cache: Path) -> dict[str, dict[str, str]]:
    """Each service's environment: CPU, offline, the real small models, its avatar and video folders."""
    from support.wav2lip_weights import write_checkpoint

    common = {"MODEL_CACHE_DIR": str(model_cache), "AVATARCHAT_OFFLINE": "1"}
    return {
        "asr": {**common, "ASR_DEVICE": "cpu", "ASR_MODEL": "embedded:tiny.en", "ASR_BEAM_SIZE": "1"},
        "llm": {**common, "LLM_DEVICE": "cpu", "LLM_MODEL_ID": "embedded:smollm2-135m-instruct"},
        "tts": {**common, "TTS_DEVICE": "cpu", "TTS_BACKEND": "piper"},
        "animation": {
            **common,
            "ANIMATION_DEVICE": "cpu",
            "ANIMATION_CHECKPOINT_PATH": str(write_checkpoint(folder / "wav2lip.pth")),
            "ANIMATION_FACE": str(SHARED / "assets" / "avatar_astronaut.png"),
            "ANIMATION_AVATAR_DIR": str(folder / "avatars"),
            "ANIMATION_OUTPUT_DIR": str(folder / "videos"),
        },
    }


@dataclass
class ProcessStack:
    """The four services, then the gateway (with `gateway_env`) pointed at them."""

    folder: Path
    model_cache: Path
    gateway_env: dict[str, str] = field(default_factory=dict)
    nodes: dict[str, Node] = field(default_factory=dict)

    def __post_init__(self) -> None:
        (self.folder / "logs").mkdir(parents=True, exist_ok=True)
        self.processes = ServiceProcesses(self.folder / "logs")
        for name, env in service_env(self.folder, self.model_cache).items():
            self.nodes[name] = Node(name, free_port(), env, self.folder / "tmp" / name)
        gateway = {f"GATEWAY_{name.upper()}_HOST": "127.0.0.1" for name in SERVICES}
        gateway |= {f"GATEWAY_{name.upper()}_PORT": str(self.nodes[name].port) for name in SERVICES}
        env = gateway | self.gateway_env
        self.nodes["gateway"] = Node("gateway", free_port(), env, self.folder / "tmp" / "gateway")

    def __getitem__(self, name: str) -> Node:
        return self.nodes[name]

    @property
    def gateway(self) -> Node:
        return self.nodes["gateway"]

    @property
    def videos(self) -> Path:
        """The animation service's video store."""
        return self.folder / "videos"

    def __enter__(self) -> ProcessStack:
        """Every service (their models load in parallel), then the gateway once all four are ready."""
        try:
            self.processes.wait_ready(*[self._spawn(name) for name in SERVICES], timeout_s=READY_TIMEOUT_S)
            self.processes.wait_ready(self._spawn("gateway"), timeout_s=READY_TIMEOUT_S)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        """SIGCONT whatever is paused, then SIGTERM everything and kill what lingers."""
        for node in self.nodes.values():
            if node.running():
                node.resume()
        self.processes.__exit__(None, None, None)

    def restart(self, name: str) -> None:
        """Start `name` again on its port and wait until it is ready."""
        assert not self[name].running(), f"{name} is still running"
        self.processes.wait_ready(self._spawn(name), timeout_s=READY_TIMEOUT_S)

    @contextmanager
    def garbage(self, name: str, mode: str) -> Iterator[None]:
        """While the block runs, `support/garbage_server.py` holds `name`'s port, answering garbage of `mode`."""
        node = self[name]
        assert not node.running(), f"{name} is still running"
        log = self.folder / "logs" / f"{name}.garbage-{mode}.log"
        script = Path(__file__).with_name("garbage_server.py")
        with log.open("wb") as out:
            popen = subprocess.Popen([sys.executable, str(script), str(node.port), mode], stdout=out, stderr=out)
        server = ServiceProcess(f"{name} (garbage)", node.port, popen, log)
        try:
            self.processes.wait_ready(server, timeout_s=60)
            yield
        finally:
            popen.terminate()
            popen.wait(timeout=30)

    def _spawn(self, name: str) -> ServiceProcess:
        node = self[name]
        node.starts += 1
        node.tmp.mkdir(parents=True, exist_ok=True)
        env = node.env | {"TMPDIR": str(node.tmp)}
        node.current = self.processes.start(f"{name}.{node.starts}", name, env, port=node.port)
        return node.current
