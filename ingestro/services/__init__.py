"""The application layer: what the entry points (API, CLI, process wiring) share above consumers and projections.

``consumer_groups``: every consumer group, the parser's and each projection's, from one table.
``uploads``: receiving an upload (store, announce, seed its job) as plain values, for the HTTP handler.
"""
