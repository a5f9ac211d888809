"""The pure core: what an email means and what it changes, as functions of (input, state, `now`).

Models, the guide's forms, dates and commands, classification, intake and the workflow's state
transitions, trust, and the schedule's planner (levels, digests, work calendar). No module here
imports `maild.adapters` or `maild.app`, and none reads the clock (tests/app/test_architecture.py).
"""
