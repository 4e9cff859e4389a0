# One image for the API, the worker, the migrations and the sandbox bank (see docker-compose.yml).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY badges ./badges
RUN pip install --no-cache-dir .
ENV PYTHONUNBUFFERED=1
EXPOSE 8000
CMD ["uvicorn", "--factory", "badges.api.app:app_from_environment", "--host", "0.0.0.0", "--port", "8000", "--ws-per-message-deflate", "false"]
