# One image for the API, the worker, the migrations and the sandbox bank (see docker-compose.yml).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY badges ./badges
RUN pip install --no-cache-dir . \
    && useradd --system --uid 10001 --no-create-home badges
# Nothing here writes to disk; secrets arrive as files (/run/secrets, read through <NAME>_FILE).
USER badges
ENV PYTHONUNBUFFERED=1 \
    BADGES_API_HOST=0.0.0.0 \
    BADGES_API_PORT=8000
EXPOSE 8000
# uvicorn with the WebSocket message bound from the settings and access logs with tokens redacted
# (badges/cli/api.py). Behind a load balancer, set FORWARDED_ALLOW_IPS to its address.
CMD ["python", "-m", "badges.cli.api"]
