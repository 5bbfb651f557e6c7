"""The hub: connected screens, the wire format, and fan-out of class events."""
