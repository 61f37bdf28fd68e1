"""The public HTTP API: /v1/avatarchatbot (+ streaming), videos, avatars."""
