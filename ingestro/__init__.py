"""Ingestro: event-sourced ingestion of CSV and JSON files into PostgreSQL over Redis Streams."""
