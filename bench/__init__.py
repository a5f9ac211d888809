"""maild's benchmark (`make bench`, `make bench-quick`): every maild figure next to a same-run floor.

Run from the repository root: `python -m bench [--quick]`. Each phase is its own module; the mail
servers live in this process (`servers.py`) and maild runs in spawned child processes, so their
peak RSS is maild's alone.
"""
