"""The error every service's start-up reports the same way: bad configuration, named precisely."""


class ConfigError(ValueError):
    """A registry, rule file, setting or port map that cannot be used; fails the service at start."""
