"""LLM backends: a local transformers model or a remote OpenAI-compatible server."""
