"""The application: the daemon (`service`, the only reader of the clock) wiring core, mail and
adapters together, the `maild` command line and its subcommands, checks, reports and the demos.
"""
