"""Shared by every test folder: nothing but what pytest must find here. Helpers live in `tests/support/`."""
