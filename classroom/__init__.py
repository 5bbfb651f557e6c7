"""classroom: a self-hosted live-session server for group fitness classes."""

__version__ = "0.1.0"
