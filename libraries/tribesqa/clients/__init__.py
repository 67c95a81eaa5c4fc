"""Clients of the system under test: management API (NIP-98 signed), keys, TLS, SSH sessions."""
