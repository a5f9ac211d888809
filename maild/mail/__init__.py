"""Email formats, pure: raw bytes to an `Inbound` (charsets, HTML text and tables, bounces, the
new text of a reply), and notices to outgoing emails (templates, MIME, calendar entries, .xlsx).

Like `maild.core`, nothing here imports `maild.adapters` or `maild.app` or does network I/O.
"""
