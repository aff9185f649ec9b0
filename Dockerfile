# Pulser in one container. Without DATABASE_URL it runs its embedded PostgreSQL under /data;
# point DATABASE_URL at a managed Postgres for anything you care about.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PULSER_HTTP_HOST=0.0.0.0 \
    PULSER_HTTP_PORT=8080 \
    PULSER_SANDBOX_HOST=0.0.0.0 \
    PULSER_SANDBOX_PORT=8081 \
    PULSER_DATA_DIR=/data \
    LOG_FORMAT=json

RUN useradd --create-home --uid 10001 pulser && mkdir -p /data && chown pulser:pulser /data
WORKDIR /app
COPY pyproject.toml README.md constraints.txt ./
COPY bot ./bot
COPY handlers ./handlers
COPY jobs ./jobs
COPY storage ./storage
COPY blocks ./blocks
COPY alerts ./alerts
COPY migrations ./migrations
COPY sandbox ./sandbox
# constraints.txt pins every dependency to the versions the suite passed with (see the README).
RUN pip install -c constraints.txt .

USER pulser
VOLUME ["/data"]
# 8080: the sidecar (heartbeats, webhooks, API, /health). 8081: the Slack sandbox, which runs only
# while no Slack tokens are set.
EXPOSE 8080 8081
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD python -c "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=4).status == 200 else 1)"
STOPSIGNAL SIGTERM
ENTRYPOINT ["pulser"]
CMD ["run"]
