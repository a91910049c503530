"""``make bench``: end-to-end throughput and memory of Ingestro, against raw COPY in the same run.

One run generates a seeded contacts file, starts private durable servers and the
API and consumers as real processes, uploads the file over HTTP, waits for the
job to complete, checks every count against what the sample must give, and
reports throughput per stage, peak memory and CPU per process, and the ratio to
a plain ``COPY`` of the same normalized rows into an equivalent table.
"""
