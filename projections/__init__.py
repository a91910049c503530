"""Projections: consumers that turn events into PostgreSQL read models, each exactly once."""
