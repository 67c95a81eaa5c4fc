"""The simulated Tribes fleet: Legion, node hosts and nodes (real HTTP and SSH on loopback)."""

__version__ = "0.1.0"
