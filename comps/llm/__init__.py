"""LLM service: OpenAI-compatible chat completions with streaming, local (transformers) and remote backends."""
