from __future__ import annotations

import pytest

from comps.asr.languages import LANGUAGES, language_name, normalize_language
from comps.core.errors import InvalidRequest

ALL = frozenset(LANGUAGES)


@pytest.mark.parametrize(
    ("value", "code"),
    [("en", "en"), ("EN", "en"), (" de ", "de"), ("English", "en"), ("mandarin", "zh"), ("en-US", "en"),
     ("pt_BR", "pt"), (None, None), ("", None), ("  ", None)],
)  # fmt: skip
def test_codes_names_and_tags(value: str | None, code: str | None) -> None:
    assert normalize_language(value, supported=ALL) == code


def test_unknown_language_is_a_400() -> None:
    with pytest.raises(InvalidRequest) as error:
        normalize_language("klingon", supported=ALL)
    assert error.value.param == "language" and error.value.status == 400


def test_language_the_model_cannot_read_is_a_400() -> None:
    with pytest.raises(InvalidRequest, match="supports: en") as error:
        normalize_language("french", supported={"en"}, param="ASR_LANGUAGE")
    assert error.value.param == "ASR_LANGUAGE"


def test_names() -> None:
    assert len(LANGUAGES) == 100
    assert language_name("en") == "english"
    assert language_name("yue") == "cantonese"
