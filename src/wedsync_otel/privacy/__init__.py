"""Scrubbing of personal data and secrets from telemetry: pure, standard library only."""
