"""Turning schema-described columns into model inputs."""
