"""Write a benchmark's markdown table between its markers in README.md."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent / "README.md"


def write_section(name: str, markdown: str, readme: Path = README) -> None:
    """Replace the text between ``<!-- name:begin -->`` and ``<!-- name:end -->`` in ``readme``.

    Args:
        name: Marker name, e.g. ``data`` or ``env``.
        markdown: The new section body (tables and the notes that explain them).
        readme: The README to edit; the markers are appended if missing.
    """
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    text = readme.read_text() if readme.exists() else "# Benchmarks\n"
    body = f"{begin}\n{markdown.strip()}\n{end}"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    text = (
        pattern.sub(lambda _: body, text)
        if pattern.search(text)
        else f"{text.rstrip()}\n\n{body}\n"
    )
    readme.write_text(text)
