"""A real, tiny chat model for tests: a random Llama and a BPE tokenizer trained here, saved like a hub model.

`build_tiny_llm(path)` writes `config.json`, `model.safetensors`, `generation_config.json` and a fast
tokenizer with a ChatML chat template into `path`, so services load it with `from_pretrained(path)`
exactly as they load a downloaded instruct model. The weights come from a fixed seed, so the model's
greedy output is the same in every run. Built once per test session; later calls copy that folder.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

# Small English text to train the tokenizer on: the words an avatar chat uses.
CORPUS = """\
Hello! How are you today? I am fine, thank you. What is your name? My name is Ava, your friendly avatar.
The weather is sunny and warm. It may rain tomorrow, so take an umbrella with you.
Can you tell me a short story? Once upon a time a small robot learned to speak and sing.
What time is it? It is ten o'clock in the morning. Let us meet at noon for lunch.
Speech recognition turns your voice into text. A language model writes the answer.
Text to speech reads the answer aloud, and the avatar moves its lips in sync with the voice.
Please answer briefly, in one or two sentences, like a person speaking on a video call.
Numbers: one two three four five six seven eight nine ten eleven twelve hundred thousand.
Questions and answers: who, what, where, when, why, how. Yes, no, maybe, of course, sure.
The quick brown fox jumps over the lazy dog. Good morning, good evening, good night, goodbye.
"""

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<unk>"]

# ChatML, the template Qwen and many instruct models use.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

# Context window of the tiny model, in tokens (small so an overflow is easy to provoke).
MAX_POSITIONS = 512

_lock = threading.Lock()
_built: Path | None = None


def _write_model(path: Path) -> None:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    # Byte-level BPE, like GPT-2/Qwen, so decoding restores spaces exactly. The alphabet is the corpus's own
    # characters (others become <unk>), so even random weights write readable English fragments.
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=SPECIAL_TOKENS,
        show_progress=False,
    )
    tokenizer.train_from_iterator(CORPUS.splitlines(), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<|endoftext|>",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token="<unk>",
        model_max_length=MAX_POSITIONS,
    )
    fast.chat_template = CHAT_TEMPLATE
    config = LlamaConfig(
        vocab_size=tokenizer.get_vocab_size(),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=MAX_POSITIONS,
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
        tie_word_embeddings=False,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1234)
        model = LlamaForCausalLM(config).eval()
    model.generation_config = GenerationConfig(
        bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id
    )
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    fast.save_pretrained(path)


def build_tiny_llm(path: Path) -> Path:
    """Write the tiny chat model into `path` (a folder, created if needed) and return it.

    The first call of a session builds it; later calls copy the first folder.
    """
    global _built
    with _lock:
        if _built is None or not (_built / "config.json").is_file():
            _write_model(path)
            _built = path
        elif path != _built:
            shutil.copytree(_built, path, dirs_exist_ok=True)
    return path
