# One image for every service of docker-compose.yml: web (gunicorn), worker and beat (Celery).

# The engine's native int8 kernel, compiled in a stage of its own so the image carries no compiler
# (recommendations/gru4rec/native; optional: without it serving uses torch's kernel or fp32).
FROM python:3.11-slim-bookworm AS native
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
COPY recommendations/gru4rec/native/ /src/
RUN python /src/builder.py /src/_i8gemv.so

FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
# Production mode unless told otherwise: the settings then need SECRET_KEY and ALLOWED_HOSTS (from .env),
# and gunicorn refuses debug mode without ALLOW_DEBUG_SERVER=true (shop/wsgi.py).
ENV DJANGO_DEBUG=false
WORKDIR /app

RUN apt-get update && apt-get install -y --no-install-recommends curl \
    && rm -rf /var/lib/apt/lists/*
COPY requirements.txt ./
# The CPU build of PyTorch: the default index would pull a multi-GB CUDA build.
RUN pip install --extra-index-url https://download.pytorch.org/whl/cpu -r requirements.txt

COPY . .
COPY --from=native /src/_i8gemv.so recommendations/gru4rec/native/_i8gemv.so
RUN DJANGO_DEBUG=false SECRET_KEY=build-only-collectstatic ALLOWED_HOSTS=localhost \
    python manage.py collectstatic --noinput

RUN useradd --create-home shop && mkdir -p /app/var/models && chown -R shop /app/var
USER shop
EXPOSE 8000
CMD ["gunicorn", "shop.wsgi", "--bind", "0.0.0.0:8000", "--workers", "2", "--timeout", "60"]
