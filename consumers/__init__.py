"""Consumers that produce events: the parser."""
