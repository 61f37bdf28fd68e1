"""`avatarchat ask` is tested against a real gateway over the gateway tests' four fake stage services."""

from __future__ import annotations

from tests.gateway.conftest import chatbot_for, served, stack

__all__ = ["chatbot_for", "served", "stack"]
