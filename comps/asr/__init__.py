"""Whisper speech recognition service (OPEA `/v1/asr` and OpenAI `/v1/audio/transcriptions`)."""
