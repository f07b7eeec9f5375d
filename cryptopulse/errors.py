"""Errors a user can act on: their message says what went wrong and what to do."""


class CryptoPulseError(Exception):
    """An expected failure, printed as one line without a traceback."""
