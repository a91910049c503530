# The one image every Ingestro service runs: the API, each consumer and the migrations
# (docker-compose.yml picks the command). `docker run --rm ingestro --help` lists them.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies in a layer of their own, so a code change does not reinstall them.
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt

COPY ingestro ./ingestro
COPY consumers ./consumers
COPY projections ./projections
COPY db ./db
RUN pip install --no-deps . \
    && useradd --system --uid 10001 --no-create-home ingestro \
    && mkdir -p /data/uploads \
    && chown ingestro /data/uploads

# The migrations ship inside the package (ingestro.migrations). /data/uploads is owned by the app user,
# so a fresh named volume mounted there is writable.
ENV INGESTRO_UPLOAD_DIR=/data/uploads

USER ingestro
# The API; a consumer's metrics (INGESTRO_METRICS_PORT in docker-compose.yml).
EXPOSE 8000 9100
ENTRYPOINT ["ingestro"]
CMD ["--help"]
