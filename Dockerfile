# The streamcore worker image: one process per container, one or more Kafka partitions each.
#   docker build -t streamcore .
#   docker run -e STREAMCORE_BROKER=kafka://kafka:9092 -e STREAMCORE_HTTP_TOKEN="$(openssl rand -hex 16)" \
#       streamcore worker apps/fraud/app.py --http 0.0.0.0:8080
# The port is open to whoever reaches it: set STREAMCORE_HTTP_TOKEN, and every endpoint but
# /health and /metrics then needs "Authorization: Bearer <token>".
FROM python:3.11-slim

WORKDIR /app
COPY pyproject.toml setup.py README.md ./
COPY streamcore ./streamcore
COPY operators ./operators
COPY apps ./apps
RUN pip install --no-cache-dir . && useradd --uid 10001 --create-home streamcore \
    && mkdir -p /var/lib/streamcore && chown streamcore /var/lib/streamcore

USER streamcore
# Every setting can also come from the environment (see README, "From one machine to Kafka").
ENV STREAMCORE_STATE_DIR=/var/lib/streamcore \
    PYTHONUNBUFFERED=1
VOLUME ["/var/lib/streamcore"]
EXPOSE 8080
# SIGTERM: finish the batch, checkpoint, replicate the changelog, commit offsets, leave the group.
STOPSIGNAL SIGTERM
ENTRYPOINT ["streamcore"]
CMD ["worker", "apps/fraud/app.py", "--http", "0.0.0.0:8080"]
