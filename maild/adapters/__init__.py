"""The imperative shell's adapters: IMAP, SMTP and the durable outbox, the store and its backends,
files, the archive, the embedded mail system, chat robots, LDAP and OAuth2. Thin: each speaks to
one outside thing and decides nothing the core could decide. Never imports `maild.app`.
"""
