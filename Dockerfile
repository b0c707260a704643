# The image of the distributed topology (docker-compose.yml runs every process from it): Python
# 3.11 slim, the runtime requirements only (no test or lint tools), an unprivileged user.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VAR_DIR=/app/var

RUN useradd --uid 10001 --create-home --no-log-init cryptosatx
WORKDIR /app

# The requirements are a layer of their own, before the code: a change of code reuses it.
COPY requirements.txt ./
RUN pip install -r requirements.txt

COPY . .
# Static files are part of the image (whitenoise serves them from VAR_DIR/staticfiles). The
# settings want a database URL and a secret key to load; collectstatic uses neither.
RUN DATABASE_URL=postgres://unused/unused SECRET_KEY=collectstatic-only \
      python manage.py collectstatic --noinput --verbosity 0 \
 && chown -R cryptosatx:cryptosatx /app/var

USER cryptosatx
EXPOSE 8000 5555
CMD ["gunicorn", "cryptosatx.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
