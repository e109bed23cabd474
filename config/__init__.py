"""The Django project: settings, URLs, the ASGI application and the Celery application.

The Celery app is imported here, as Django's Celery guide does, so every Django process
(Daphne, manage.py, the tests) sends tasks through the configured Redis broker.
"""

from config.celery import app as celery_app

__all__ = ["celery_app"]
