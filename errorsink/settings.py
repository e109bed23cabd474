"""Django settings, all from the environment (see README "Configuration")."""

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

BASE_DIR = Path(__file__).resolve().parent.parent


def _env_bool(name: str, default: bool) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


def _with_redis_db(url: str, db: str | None) -> str:
    """Tests point REDIS_URL at another database number so they never touch dev data."""
    if db is None:
        return url
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{db}"))


def _database_from_url(url: str) -> dict:
    parts = urlsplit(url)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parts.path.lstrip("/")) or "errorsink",
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
        "TEST": {"NAME": os.environ.get("ERRORSINK_TEST_DATABASE", None)},
    }


DEBUG = _env_bool("DEBUG", False)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG and os.environ.get("ERRORSINK_REQUIRE_SECRET_KEY") == "1":
        raise RuntimeError("SECRET_KEY must be set in production")
    # A per-checkout key kept with the embedded state, so sessions survive restarts.
    _key_file = BASE_DIR / ".errorsink" / "secret_key"
    if not _key_file.exists():
        import secrets

        _key_file.parent.mkdir(parents=True, exist_ok=True)
        _key_file.write_text(secrets.token_urlsafe(50))
    SECRET_KEY = _key_file.read_text().strip()

ALLOWED_HOSTS = [
    h.strip()
    for h in os.environ.get("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",")
    if h.strip()
]
PORT = int(os.environ.get("PORT", "8000"))
ERRORSINK_QUEUE = os.environ.get("ERRORSINK_QUEUE", "session-errors")

_database_url = os.environ.get("DATABASE_URL")
_redis_url = os.environ.get("REDIS_URL")
if not _database_url or not _redis_url:
    from errorsink import embedded

    _database_url = _database_url or embedded.database_url()
    _redis_url = _redis_url or embedded.redis_url()
DATABASE_URL = _database_url
REDIS_URL = _with_redis_db(_redis_url, os.environ.get("ERRORSINK_REDIS_DB"))

DATABASES = {"default": _database_from_url(DATABASE_URL)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "daphne",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "django_htmx",
    "ninja",  # in INSTALLED_APPS so /api/v1/docs serves Swagger UI from static, not a CDN
    "errorsink",
    "dashboard",
]

MIDDLEWARE = [
    # First, so every response (errors from other middleware included) gets X-Request-Id.
    "errorsink.api.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Before WhiteNoise, so static files carry the policy too.
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "errorsink.urls"
ASGI_APPLICATION = "errorsink.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    }
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "projects"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
# WhiteNoise serves collected files from here and, with finders, straight from static/.
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
# Served by WhiteNoise from the app itself in production too; no CDN, no separate web server.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        # channels-redis blocks up to 5 s in BZPOPMIN; redis-py's default socket timeout is also
        # 5 s, which turns every idle websocket into a timeout error. Give the read headroom.
        "CONFIG": {
            "hosts": [{"address": REDIS_URL, "socket_timeout": 30}],
            "capacity": 1000,
            "expiry": 10,
        },
    }
}

CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # htmx reads the token from the cookie-less meta tag instead
X_FRAME_OPTIONS = "DENY"
# Every response: scripts and styles only from our own static files (htmx is vendored), the
# live websocket back to this host, never framed.
SECURE_CSP = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    # 'self' covers same-origin ws: and wss: (CSP level 3); websockets go nowhere else.
    "connect-src": ["'self'"],
    "frame-ancestors": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'"],
}
SECURE_CONTENT_TYPE_NOSNIFF = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {
            # Appends the request id to lines logged while a request is served.
            "()": "errorsink.api.request_id.RequestIdFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
        }
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

# Requests per key per window on /api/v1 (0 turns the limit off).
ERRORSINK_API_RATE_LIMIT = int(os.environ.get("ERRORSINK_API_RATE_LIMIT", "600"))
ERRORSINK_API_RATE_WINDOW = int(os.environ.get("ERRORSINK_API_RATE_WINDOW", "60"))

ERRORSINK_RETENTION_DAYS = int(os.environ.get("ERRORSINK_RETENTION_DAYS", "30"))
_STATE_DIR = Path(os.environ.get("ERRORSINK_STATE_DIR", BASE_DIR / ".errorsink"))
_STATE_DIR.mkdir(parents=True, exist_ok=True)
CELERY_BEAT_SCHEDULE_FILENAME = str(_STATE_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "events-prune": {"task": "errorsink.tasks.events_prune", "schedule": 3600.0},
}
ERRORSINK_INGEST_BATCH = int(os.environ.get("ERRORSINK_INGEST_BATCH", "4000"))
# Ingest consumer threads per Celery worker process (0: a worker that only runs tasks). While
# one thread's batch is in PostgreSQL, another parses the next (`make bench` measured 3 best).
ERRORSINK_INGEST_CONSUMERS = int(os.environ.get("ERRORSINK_INGEST_CONSUMERS", "3"))
