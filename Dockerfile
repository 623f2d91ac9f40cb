# syntax=docker/dockerfile:1
# Multi-stage image for every Python process of the terminal (web, workers, beat, feed).
# Build from the repository root: docker build -f deploy/Dockerfile -t algo-terminal .

FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /build
RUN python -m venv /opt/venv
COPY pyproject.toml constraints.txt README.md ./
RUN /opt/venv/bin/pip install -c constraints.txt .

FROM python:3.11-slim-bookworm AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_ENV=production \
    VAR_DIR=/var/lib/terminal
RUN groupadd --system --gid 10001 terminal \
 && useradd --system --uid 10001 --gid terminal --home-dir /app --shell /usr/sbin/nologin terminal \
 && mkdir -p /var/lib/terminal && chown terminal:terminal /var/lib/terminal
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY --chown=terminal:terminal . /app
# Hashed static files are collected at build time; the keys and host are placeholders for this step only.
RUN SECRET_KEY=collectstatic-only-not-a-runtime-secret-000000000000000 ALLOWED_HOSTS=build \
    AUDIT_SIGNING_KEY=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= \
    python manage.py collectstatic --noinput --verbosity 0
USER terminal:terminal
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/api/health', timeout=4)"]
CMD ["daphne", "--bind", "0.0.0.0", "--port", "8000", "--proxy-headers", "terminal.asgi:application"]
