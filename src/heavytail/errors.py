"""The one exception type for bad user input: its message is a single line naming the key or file and the fix."""


class ConfigError(ValueError):
    """Bad configuration or input data, detected before any training starts."""
