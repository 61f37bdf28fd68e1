"""ASR backends: openai-whisper, faster-whisper (CTranslate2) and Hugging Face transformers."""
