"""Text with Unix line endings (\n) whatever the writer used (\r\n, \r): what the MIME builder
and the templates' helpers both need.

Its own module, free of Jinja, so that the sender's child, which builds emails' bytes
(`mime.to_mime`) but renders nothing, does not load jinja2 (`templatetools` re-exports it).
"""

from __future__ import annotations


def unix_newlines(text: str) -> str:
    if "\r" not in text:  # templates write \n: two passes over a 15 KB page saved per email
        return text
    return text.replace("\r\n", "\n").replace("\r", "\n")
