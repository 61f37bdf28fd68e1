"""Whisper's languages: ISO-639-1 codes and names, and per-request language validation."""

from __future__ import annotations

from collections.abc import Collection

from comps.core.errors import InvalidRequest

# Copied from openai-whisper's `whisper/tokenizer.py` (LANGUAGES), the 100 languages every Whisper
# checkpoint knows; kept here so validating a request does not import torch.
LANGUAGES: dict[str, str] = {
    "en": "english", "zh": "chinese", "de": "german", "es": "spanish", "ru": "russian", "ko": "korean",
    "fr": "french", "ja": "japanese", "pt": "portuguese", "tr": "turkish", "pl": "polish", "ca": "catalan",
    "nl": "dutch", "ar": "arabic", "sv": "swedish", "it": "italian", "id": "indonesian", "hi": "hindi",
    "fi": "finnish", "vi": "vietnamese", "he": "hebrew", "uk": "ukrainian", "el": "greek", "ms": "malay",
    "cs": "czech", "ro": "romanian", "da": "danish", "hu": "hungarian", "ta": "tamil", "no": "norwegian",
    "th": "thai", "ur": "urdu", "hr": "croatian", "bg": "bulgarian", "lt": "lithuanian", "la": "latin",
    "mi": "maori", "ml": "malayalam", "cy": "welsh", "sk": "slovak", "te": "telugu", "fa": "persian",
    "lv": "latvian", "bn": "bengali", "sr": "serbian", "az": "azerbaijani", "sl": "slovenian", "kn": "kannada",
    "et": "estonian", "mk": "macedonian", "br": "breton", "eu": "basque", "is": "icelandic", "hy": "armenian",
    "ne": "nepali", "mn": "mongolian", "bs": "bosnian", "kk": "kazakh", "sq": "albanian", "sw": "swahili",
    "gl": "galician", "mr": "marathi", "pa": "punjabi", "si": "sinhala", "km": "khmer", "sn": "shona",
    "yo": "yoruba", "so": "somali", "af": "afrikaans", "oc": "occitan", "ka": "georgian", "be": "belarusian",
    "tg": "tajik", "sd": "sindhi", "gu": "gujarati", "am": "amharic", "yi": "yiddish", "lo": "lao", "uz": "uzbek",
    "fo": "faroese", "ht": "haitian creole", "ps": "pashto", "tk": "turkmen", "nn": "nynorsk", "mt": "maltese",
    "sa": "sanskrit", "lb": "luxembourgish", "my": "myanmar", "bo": "tibetan", "tl": "tagalog", "mg": "malagasy",
    "as": "assamese", "tt": "tatar", "haw": "hawaiian", "ln": "lingala", "ha": "hausa", "ba": "bashkir",
    "jw": "javanese", "su": "sundanese", "yue": "cantonese",
}  # fmt: skip

# Whisper's extra spellings (TO_LANGUAGE_CODE in the same file); OPEA's server is configured with names.
_ALIASES: dict[str, str] = {
    "burmese": "my", "valencian": "ca", "flemish": "nl", "haitian": "ht", "letzeburgesch": "lb",
    "pushto": "ps", "panjabi": "pa", "moldavian": "ro", "moldovan": "ro", "sinhalese": "si",
    "castilian": "es", "mandarin": "zh",
}  # fmt: skip

_BY_NAME: dict[str, str] = {name: code for code, name in LANGUAGES.items()} | _ALIASES


def language_name(code: str) -> str:
    """The lower-case English name of a Whisper language code ("en" -> "english"), or the code itself."""
    return LANGUAGES.get(code, code)


def normalize_language(value: str | None, *, supported: Collection[str], param: str = "language") -> str | None:
    """Turn a request's language (a code such as "en"/"EN"/"en-US" or a name such as "English") into a code.

    Args:
        value: what the caller sent; None or blank means "detect".
        supported: the codes the loaded model can transcribe (only "en" for English-only models).
        param: the request field, named in the error.

    Raises:
        InvalidRequest: the language is unknown, or the loaded model cannot transcribe it.
    """
    if value is None or not value.strip():
        return None
    text = value.strip().lower().replace("_", "-")
    code = text if text in LANGUAGES else _BY_NAME.get(text)
    if code is None and "-" in text:  # a BCP-47 tag such as en-US: Whisper only knows the language part
        code = text.split("-", 1)[0] if text.split("-", 1)[0] in LANGUAGES else None
    if code is None:
        raise InvalidRequest(
            f"unknown language {value!r}: use an ISO-639-1 code such as 'en' or 'de'",
            param=param,
            code="unsupported_language",
        )
    if code not in supported:
        allowed = ", ".join(sorted(supported)) if len(supported) <= 5 else f"{len(supported)} languages"
        raise InvalidRequest(
            f"language {code!r} is not supported by the loaded model (it supports: {allowed})",
            param=param,
            code="unsupported_language",
        )
    return code
