"""tribesqa: Robot Framework keyword libraries that prove a Tribes cluster works end to end."""

__version__ = "0.1.0"
