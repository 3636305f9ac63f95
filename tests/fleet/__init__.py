"""Simulated Jetson fleet: one sshd per device in its own mount/UTS namespace."""
