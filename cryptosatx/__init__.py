"""CryptoSatX: a self-hosted crypto market scanner that measures the outcome of every signal."""

from cryptosatx.celery import app as celery_app

__all__ = ["celery_app"]
