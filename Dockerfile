# The streamcore worker image: one process per container, one or more Kafka partitions each.
#   docker build -t streamcore .
#   docker run -e STREAMCORE_BROKER=kafka://kafka:9092 -e STREAMCORE_HTTP_TOKEN="$(openssl rand -hex 16)" \
#       streamcore worker apps/fraud/app.py --http 0.0.0.0:8080
# The port is open to whoever reaches it: set STREAMCORE_HTTP_TOKEN, and every endpoint but
# /health, /metrics and the status page then need "Authorization: Bearer <token>".
# The image carries the MCP SDK: add --mcp (with STREAMCORE_MCP_TOKEN) to serve agents' tools at /mcp.
# The slim image has no C compiler: the wheel (with the compiled kernels) is built in a
# build stage, and the build fails there if a kernel does not compile, so the worker image
# always runs the fast path (`streamcore --version` says "compiled kernels").
FROM python:3.11-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY streamcore ./streamcore
COPY operators ./operators
COPY apps ./apps
RUN STREAMCORE_REQUIRE_EXTENSIONS=1 pip wheel --no-cache-dir --wheel-dir /wheels ".[mcp]"

FROM python:3.11-slim
WORKDIR /app
COPY --from=build /wheels /wheels
COPY apps ./apps
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels \
    && python -c "from streamcore.io.log import split; assert split.COMPILED, 'no compiled kernels'" \
    && useradd --uid 10001 --create-home streamcore \
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
