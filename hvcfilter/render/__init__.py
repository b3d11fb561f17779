"""Renderers: turn result objects into text for people, JSON and SARIF for tools.

One module per concern (``render.diagnostics`` for lint reports and
``explain``; others for replays and payloads). Renderers are pure: they
return strings and never print, so they test without a terminal. Only text
renderers import rich, and only when colour is asked for.
"""

from __future__ import annotations

__all__: list[str] = []
