"""maild: turns a shared inbox into a collaboration process — items, owners who confirm, follow-up."""

__version__ = "0.1.0"
