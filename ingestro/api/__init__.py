"""The HTTP API (starlette): uploads in, job status, errors and data out."""
