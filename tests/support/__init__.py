"""Helpers the tests import: engines and tables, events, the in-memory fake repository."""
