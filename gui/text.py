"""Plain text inside Qt rich-text labels and logs."""

from __future__ import annotations

import html


def escape(text: object) -> str:
    """`text` shown literally in a rich-text widget (quotes stay readable)."""
    return html.escape(str(text), quote=False)
