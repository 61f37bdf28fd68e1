"""Local chat model with Hugging Face transformers: chat template, token streaming from a worker thread."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio.to_thread

from comps.core.concurrency import call_in_thread, produce_in_thread
from comps.core.device import Device, resolve_device
from comps.core.limits import InferenceQueue
from comps.core.quantization import apply_fp8, finish_fp8_measurement
from comps.llm.backends.base import Generation, GenerationRequest, StreamPiece
from comps.llm.backends.generate import LocalModel
from comps.llm.download import model_folder
from comps.llm.settings import LlmSettings

logger = logging.getLogger(__name__)

Sink = Callable[[StreamPiece], None]


@dataclass
class GenerationStats:
    """Counters since start-up (read by tests and logs): generations started, cancelled, tokens made."""

    started: int = 0
    cancelled: int = 0
    completion_tokens: int = 0


class TransformersBackend:
    """A local causal LM; blocking generation runs in the inference queue's worker threads."""

    def __init__(self, *, model: LocalModel, name: str, queue: InferenceQueue) -> None:
        """Serve `model` under `name`, at most `queue.concurrency` generations at once."""
        self._model = model
        self._name = name
        self._queue = queue
        self.stats = GenerationStats()
        self._stats_lock = threading.Lock()

    @property
    def model_name(self) -> str:
        """The model name answers carry."""
        return self._name

    @property
    def local_model(self) -> LocalModel:
        """The loaded model (benchmarks call it directly to measure the service's overhead)."""
        return self._model

    @property
    def max_model_len(self) -> int | None:
        """The context window in tokens."""
        return self._model.context_length

    async def complete(self, request: GenerationRequest) -> Generation:
        """Generate the whole answer in a worker thread; cancelling the caller stops the generation."""
        return await call_in_thread(lambda stopped: self._run(request, None, stopped), run=self._queue.run)

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamPiece]:
        """Stream text pieces from the worker thread; closing the iterator stops the generation."""

        def work(emit: Sink, stopped: threading.Event) -> None:
            self._run(request, emit, stopped)

        async with produce_in_thread(work, run=self._queue.run) as pieces:
            async for piece in pieces:
                yield piece

    def _run(self, request: GenerationRequest, sink: Sink | None, cancel: threading.Event) -> Generation:
        """Blocking: prepare and generate, sending pieces to `sink` (worker thread)."""
        with self._stats_lock:
            self.stats.started += 1
        result = self._model.generate(
            request, on_text=(lambda text: sink(StreamPiece(text))) if sink else None, cancel=cancel
        )
        with self._stats_lock:
            self.stats.completion_tokens += result.usage.completion_tokens if result.usage else 0
            if cancel.is_set():
                self.stats.cancelled += 1
        if sink is not None:
            sink(StreamPiece("", finish_reason=result.finish_reason, usage=result.usage))
        return result


def load_backend(settings: LlmSettings, device: Device | None = None) -> TransformersBackend:
    """Blocking: load the model and tokenizer named by the settings."""
    device = device or resolve_device(settings.device)
    folder = model_folder(settings)
    model = LocalModel.load(
        folder,
        device=device,
        dtype=settings.dtype,
        trust_remote_code=settings.trust_remote_code,
        max_model_len=settings.max_model_len,
        default_max_tokens=settings.default_max_tokens,
    )
    # FP8 (Gaudi): applied after the model is on its device and in eval mode; a no-op when unset.
    model.model = apply_fp8(model.model, settings.fp8_config)
    queue = InferenceQueue(concurrency=settings.max_concurrency, max_waiting=settings.max_queue)
    logger.info(
        "loaded %s from %s on %s (context %d tokens)", settings.model_id, folder, device.kind, model.context_length
    )
    return TransformersBackend(model=model, name=settings.model_name, queue=queue)


@asynccontextmanager
async def open_transformers_backend(settings: LlmSettings) -> AsyncIterator[TransformersBackend]:
    """Load the model in a worker thread for the service's lifespan."""
    backend = await anyio.to_thread.run_sync(load_backend, settings)
    network = backend.local_model.model
    try:
        yield backend
    finally:
        # In MEASURE mode the calibration statistics are written when the service stops.
        await anyio.to_thread.run_sync(finish_fp8_measurement, network, settings.fp8_config)
