# Relay: one image for every process kind (web, worker, beat, runner; see
# config/processes.py). Small: python:3.11-slim, wheels only, no compilers kept.
# Non-root: everything runs as the unprivileged user "relay" (uid 10001).
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=config.settings \
    RELAY_VAR_DIR=/var/lib/relay

WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt

RUN groupadd --system --gid 10001 relay \
 && useradd --system --uid 10001 --gid relay --home-dir /app --shell /usr/sbin/nologin relay \
 && mkdir -p /var/lib/relay && chown relay:relay /var/lib/relay /app

COPY --chown=relay:relay . .
USER relay

# Static files are collected into the image (whitenoise serves them from every web
# process); RELAY_VAR_DIR's data (media, files) lives on a volume.
ENV STATIC_ROOT=/app/staticfiles
RUN RELAY_VAR_DIR=/tmp/relay-build python manage.py collectstatic --noinput -v0 && rm -rf /tmp/relay-build
VOLUME ["/var/lib/relay"]
EXPOSE 8000

HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]

# The web process; compose.yaml (and any orchestrator) runs the other kinds from the
# same image with the commands of the Procfile.
CMD ["python", "-m", "granian", "--interface", "asgi", "--host", "0.0.0.0", "--port", "8000", "--workers", "2", "--loop", "uvloop", "--backpressure", "32768", "--log-level", "warning", "config.asgi:application"]
