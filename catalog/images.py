"""Generated product images: an SVG placeholder from the name and category, no network, no files."""
from __future__ import annotations

import textwrap
import zlib

from django.utils.html import escape


def category_colour(key: str) -> tuple[str, str]:
    """A stable (background, foreground) pair for a category key: same category, same colour."""
    hue = zlib.crc32((key or "uncategorised").encode()) % 360
    return f"hsl({hue}, 55%, 88%)", f"hsl({hue}, 60%, 26%)"


def product_placeholder_svg(name: str, category_name: str = "", category_key: str = "") -> str:
    background, foreground = category_colour(category_key or category_name)
    lines = textwrap.wrap(name or "Product", width=18)[:3] or ["Product"]
    if len(textwrap.wrap(name or "", width=18)) > 3:
        lines[-1] = lines[-1][:16] + "…"
    first_y = 150 - (len(lines) - 1) * 15
    text = "".join(
        f'<text x="160" y="{first_y + i * 30}" font-size="24" font-weight="600" text-anchor="middle">{escape(line)}</text>'
        for i, line in enumerate(lines)
    )
    initial = escape((name or "?").strip()[:1].upper() or "?")
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 320 240" width="320" height="240" role="img" '
        f'aria-label="{escape(name)}">'
        f"<title>{escape(name)}</title>"
        f'<rect width="320" height="240" fill="{background}"/>'
        f'<circle cx="160" cy="62" r="34" fill="{foreground}" opacity="0.15"/>'
        f'<text x="160" y="75" font-size="36" text-anchor="middle" fill="{foreground}" '
        f'font-family="system-ui, sans-serif">{initial}</text>'
        f'<g fill="{foreground}" font-family="system-ui, sans-serif">{text}</g>'
        f'<text x="160" y="222" font-size="15" text-anchor="middle" fill="{foreground}" opacity="0.8" '
        f'font-family="system-ui, sans-serif">{escape(category_name)}</text>'
        "</svg>"
    )
