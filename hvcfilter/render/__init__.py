"""Renderers: turn result objects into text for people, JSON and SARIF for tools.

One module per command's results (:mod:`.check`, one module per format of
lint reports; :mod:`.explain`; :mod:`.compile` for dry runs and diffs;
:mod:`.replay`; :mod:`.verify`), with :mod:`.styled` for coloured text.
Renderers are pure: they return strings and never print, so they test
without a terminal. Only text renderers import rich, and only when colour is
asked for.

Imports: the result types of every domain room; never the CLI.
"""

from __future__ import annotations

__all__: list[str] = []
