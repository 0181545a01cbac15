"""The chaos run: the fleet under mixed load while processes are killed and services restarted."""
