"""UserError: the root of every bad-input error; the CLI prints it as one line and exits 2."""


class UserError(ValueError):
    """Bad user input (file, key, value, flag); the message names it and what is allowed."""
