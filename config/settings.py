"""Django settings, read from the environment and nothing else (see README "Configuration").

Importing this module starts no server and writes no file: the development entry points
(manage.py, `python -m devstack`, the pytest plugin, the benchmarks) put DATABASE_URL,
REDIS_URL and SECRET_KEY in the environment first, starting the embedded services if need be.
"""

import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

import dj_email_url
from django.core.exceptions import ImproperlyConfigured

from config.schedules import phased

BASE_DIR = Path(__file__).resolve().parent.parent


def _env_required(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise ImproperlyConfigured(
            f"{name} is not set. Set it in the environment, or start errorsink with "
            "`make run` or manage.py, which use the embedded services of this checkout."
        )
    return value


def _env_bool(name: str, default: bool) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


def _env_int_between(name: str, default: int, low: int, high: int) -> int:
    text = os.environ.get(name, "").strip() or str(default)
    if not (text.isascii() and text.isdigit() and low <= int(text) <= high):
        raise ImproperlyConfigured(f"{name} must be a whole number from {low} to {high}.")
    return int(text)


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
        # Connections are lent from a pool per process, not kept one per thread: Daphne runs
        # each HTTP request on a thread of its own, so a kept connection was a new PostgreSQL
        # backend per request, left idle until collected (docs/operating.md, connections).
        "CONN_MAX_AGE": 0,
        "CONN_HEALTH_CHECKS": True,  # the pool checks a connection before lending it
        "OPTIONS": {"pool": _database_pool()},
        "TEST": {"NAME": os.environ.get("ERRORSINK_TEST_DATABASE", None)},
    }


def _database_pool() -> dict:
    """psycopg_pool's options. A request waits at most `timeout` seconds for a connection, so
    an outage fails fast; a reconnection that keeps failing gives up after `reconnect_timeout`,
    so the first request after an outage connects afresh instead of waiting out the pool's
    backoff, which doubles from a second towards minutes."""
    return {
        "min_size": 2,
        "max_size": _env_int_between("ERRORSINK_DB_POOL_SIZE", 20, 4, 500),
        "timeout": 5,
        "reconnect_timeout": 5,
    }


DEBUG = _env_bool("DEBUG", False)
SECRET_KEY = _env_required("SECRET_KEY")

ALLOWED_HOSTS = [
    h.strip()
    for h in os.environ.get("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",")
    if h.strip()
]
ERRORSINK_QUEUE = os.environ.get("ERRORSINK_QUEUE", "session-errors")
# The redis-cli a new project's page tells users to push their first event with.
ERRORSINK_REDIS_CLI = os.environ.get("ERRORSINK_REDIS_CLI", "redis-cli")

DATABASE_URL = _env_required("DATABASE_URL")
REDIS_URL = _with_redis_db(_env_required("REDIS_URL"), os.environ.get("ERRORSINK_REDIS_DB"))

DATABASES = {"default": _database_from_url(DATABASE_URL)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "daphne",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",  # ArrayField: quality tags and rollup metric values
    "channels",
    "django_htmx",
    "ninja",  # in INSTALLED_APPS so /api/v1/docs serves Swagger UI from static, not a CDN
    "axes",  # sign-in brute-force protection (below)
    # Single sign-on (docs/teams.md): OpenID Connect and the common providers, by environment.
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.openid_connect",
    # Each of GitHub, GitLab, Google and Microsoft only when configured: an unconfigured
    # provider's routes would answer 500.
    *(
        f"allauth.socialaccount.providers.{name}"
        for name in ("github", "gitlab", "google", "microsoft")
        if os.environ.get(f"ERRORSINK_{name.upper()}_CLIENT_ID")
    ),
    "errorsink",
    "dashboard",
]

MIDDLEWARE = [
    # First, so every response (errors from other middleware included) gets X-Request-Id.
    "errorsink.api.middleware.RequestIdMiddleware",
    "config.middleware.NulRefusedMiddleware",
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
    "allauth.account.middleware.AccountMiddleware",
    # Last, as django-axes requires: answers a locked-out sign-in with its page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"

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
                "dashboard.context.accounts",
            ],
        },
    }
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "login"
# Sign-in brute-force protection (django-axes): after ERRORSINK_LOGIN_FAILURES wrong passwords
# for one account, or from one address, that account or address waits ERRORSINK_LOGIN_LOCKOUT
# minutes; a successful sign-in clears its count. The address is the connection's (REMOTE_ADDR).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = int(os.environ.get("ERRORSINK_LOGIN_FAILURES", "10"))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("ERRORSINK_LOGIN_LOCKOUT", "15")))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False
LOGIN_REDIRECT_URL = "projects"

# django-allauth serves single sign-on only: passwords, their reset and invitations are Django's
# and errorsink's own views (dashboard/account_views.py).
ACCOUNT_ADAPTER = "dashboard.sso.AccountAdapter"
SOCIALACCOUNT_ADAPTER = "dashboard.sso.SocialAccountAdapter"
ACCOUNT_LOGIN_METHODS = {"username"}
ACCOUNT_SIGNUP_FIELDS = ["username*", "email*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "none"
SOCIALACCOUNT_AUTO_SIGNUP = True
SOCIALACCOUNT_LOGIN_ON_GET = False  # a provider sign-in starts from a POST (CSRF-safe)
SOCIALACCOUNT_STORE_TOKENS = False
# A sign-in through a provider is its own account, never merged into a password account of the
# same address: errorsink does not verify addresses, so a merge would hand an account to whoever
# had typed its address (allauth would wipe that password instead). docs/teams.md says more.
SOCIALACCOUNT_EMAIL_AUTHENTICATION = False
ACCOUNT_UNIQUE_EMAIL = False


def _sso_providers() -> dict:
    """The identity providers configured in the environment (docs/teams.md, "Single sign-on")."""
    providers: dict = {}
    if os.environ.get("ERRORSINK_OIDC_URL"):
        app = {"provider_id": "oidc", "name": os.environ.get("ERRORSINK_OIDC_NAME", "SSO"),
               "client_id": os.environ.get("ERRORSINK_OIDC_CLIENT_ID", ""),
               "secret": os.environ.get("ERRORSINK_OIDC_SECRET", ""),
               "settings": {"server_url": os.environ["ERRORSINK_OIDC_URL"]}}  # fmt: skip
        providers["openid_connect"] = {"APPS": [app], "OAUTH_PKCE_ENABLED": True}
    for name in ("github", "gitlab", "google", "microsoft"):
        client_id = os.environ.get(f"ERRORSINK_{name.upper()}_CLIENT_ID")
        if client_id:
            app = {
                "client_id": client_id,
                "secret": os.environ.get(f"ERRORSINK_{name.upper()}_SECRET", ""),
            }
            if name == "microsoft":
                app["settings"] = {
                    "tenant": os.environ.get("ERRORSINK_MICROSOFT_TENANT", "organizations")
                }
            if name == "gitlab" and os.environ.get("ERRORSINK_GITLAB_URL"):
                app["settings"] = {"gitlab_url": os.environ["ERRORSINK_GITLAB_URL"]}
            providers[name] = {"APPS": [app]}
            if name in _SSO_SCOPES:
                providers[name]["SCOPE"] = _SSO_SCOPES[name]
    return providers


_SSO_ORIGINS = {"github": "https://github.com", "gitlab": "https://gitlab.com",
                "google": "https://accounts.google.com",
                "microsoft": "https://login.microsoftonline.com"}  # fmt: skip


def _sso_form_origins() -> list[str]:
    """Where a sign-in through the configured providers goes (their sign-in pages' origins);
    ERRORSINK_SSO_ORIGINS adds any other, for an OpenID provider whose sign-in page is not on
    its issuer's host."""
    origins = [origin for name, origin in _SSO_ORIGINS.items()
               if os.environ.get(f"ERRORSINK_{name.upper()}_CLIENT_ID")]  # fmt: skip
    for url in (os.environ.get("ERRORSINK_OIDC_URL"), os.environ.get("ERRORSINK_GITLAB_URL")):
        if url:
            parts = urlsplit(url)
            origins.append(f"{parts.scheme}://{parts.netloc}")
    extra = os.environ.get("ERRORSINK_SSO_ORIGINS", "").split(",")
    origins += [origin.strip() for origin in extra if origin.strip()]
    return sorted(set(origins))


_SSO_SCOPES = {"github": ["read:user", "user:email"], "gitlab": ["read_user"],
               "google": ["openid", "email", "profile"]}  # fmt: skip
SOCIALACCOUNT_PROVIDERS = _sso_providers()
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
# WhiteNoise serves collected files from here (collectstatic) and, with finders, static/.
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
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
            # redis-py's pools stop at 100 connections: 200 pages opening at once each join
            # a group, and the 101st failed with "Too many connections".
            "hosts": [{"address": REDIS_URL, "socket_timeout": 30, "max_connections": 1000}],
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
# Behind a TLS-terminating proxy (ERRORSINK_TLS=1): cookies only over https, the proxy's
# X-Forwarded-Proto trusted (the proxy must set it, overwriting any a client sent), and the
# page's origin accepted for CSRF. Extra origins (another host name) by ERRORSINK_TRUSTED_ORIGINS.
ERRORSINK_TLS = os.environ.get("ERRORSINK_TLS", "").lower() in ("1", "true", "yes")
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = ERRORSINK_TLS
if ERRORSINK_TLS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = int(os.environ.get("ERRORSINK_HSTS_SECONDS", "0"))
CSRF_TRUSTED_ORIGINS = [
    origin.strip()
    for origin in os.environ.get("ERRORSINK_TRUSTED_ORIGINS", "").split(",")
    if origin.strip()
]
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
    # A sign-in through a provider is a form posted here and redirected to the provider's own
    # page, which form-action also governs: the configured providers' origins are allowed.
    "form-action": ["'self'", *_sso_form_origins()],
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
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # The rollups run every 2 s: "received", "succeeded" and "sending due task" for each
        # would bury everything else. Only those lines go; failures are still logged.
        "celery.app.trace": {"filters": ["routine_tasks"]},
        "celery.worker.strategy": {"filters": ["routine_tasks"]},
        "celery.beat": {"filters": ["routine_tasks"]},
    },
    "filters": {"routine_tasks": {"()": "config.log_filters.RoutineTasksFilter"}},
}

# Requests per key per window on /api/v1's reads and settings (0 turns the limit off); ingest
# routes are governed by the project's ingest quota instead.
ERRORSINK_API_RATE_LIMIT = int(os.environ.get("ERRORSINK_API_RATE_LIMIT", "600"))
ERRORSINK_API_RATE_WINDOW = int(os.environ.get("ERRORSINK_API_RATE_WINDOW", "60"))
# Events a second the front door accepts per project unless its owners set their own (0: off).
ERRORSINK_INGEST_QUOTA = _env_int_between("ERRORSINK_INGEST_QUOTA", 5000, 0, 10_000_000)

# Live pages. A page whose socket holds more than this many unsent bytes (its browser stopped
# reading) gets no more pushes; once it reads again it is redrawn from the database.
ERRORSINK_LIVE_BACKLOG_BYTES = _env_int_between(
    "ERRORSINK_LIVE_BACKLOG_BYTES", 512 * 1024, 16 * 1024, 64 * 1024 * 1024
)
# How often a web process logs its live counters (pushes, renders, queries, sends), when any.
ERRORSINK_LIVE_STATS_SECONDS = _env_int_between("ERRORSINK_LIVE_STATS_SECONDS", 60, 1, 86_400)
ERRORSINK_LIVE_DB_KEEP_CONNECTIONS = True

# The retention of new projects (each project then has its own, edited by its owners); the
# bounds are the ones owners may choose (errorsink.projects.models.RETENTION_DAYS_MIN/MAX).
ERRORSINK_RETENTION_DAYS = _env_int_between("ERRORSINK_RETENTION_DAYS", 30, 1, 400)
# Teams (docs/teams.md): how long an invitation link works, and whether anyone may make an
# account without one (an operator's choice; off, accounts come from invitations and SSO).
ERRORSINK_INVITE_DAYS = _env_int_between("ERRORSINK_INVITE_DAYS", 7, 1, 90)
ERRORSINK_OPEN_SIGNUP = os.environ.get("ERRORSINK_OPEN_SIGNUP", "").lower() in ("1", "true", "yes")
# The checkout's state folder, shared with the embedded services and the secret key; beat's
# scheduler creates it when it starts (config/celery.py).
# An empty value means unset: never the current directory.
STATE_DIR = Path(os.environ.get("ERRORSINK_STATE_DIR") or BASE_DIR / ".errorsink")
CELERY_BEAT_SCHEDULE_FILENAME = str(STATE_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULER = "config.celery:StateDirScheduler"
CELERY_BEAT_SCHEDULE = {
    # Every 5 minutes, each run at most a minute (errorsink/projects/retention.py), so a
    # large backlog (a lowered retention, a restored database) drains over several runs; as for
    # the rollups, a run queued while the worker was down is dropped rather than piled up.
    "events-prune": {
        "task": "errorsink.tasks.events_prune",
        "schedule": 300.0,
        "options": {"expires": 300.0},
    },
    # The three 2-second tasks each start at a phase of their own (config/schedules.py): on
    # one tick they held up the queue readers' batches.
    # Every 2 s, so figures (and the live charts) trail ingest by a few seconds; a run beat
    # queued while the worker was down is dropped rather than piled up (the next one catches up
    # by itself). An idle run is a handful of cheap queries.
    "rollups-compute": {
        "task": "errorsink.tasks.rollups_compute",
        "schedule": phased(2.0, phase=0.0),
        "options": {"expires": 2.0},
    },
    # Every minute, each run at most 50 s: errors stored before issues existed join them
    # (errorsink/issues/backfill.py). Once none is left, a run is one empty index read.
    # Every 2 s: an alert fires within a few seconds of its condition (docs/alerts.md allows
    # 10). A run queued while the worker was down is dropped; the next one sees the same state.
    "alerts-evaluate": {
        "task": "errorsink.tasks.alerts_evaluate",
        "schedule": phased(2.0, phase=0.7),
        "options": {"expires": 2.0},
    },
    # Every 2 s: the search index's pending list merged while small, so that no insert of the
    # queue readers stalls to merge a full one (errorsink/sessions/search_index.py).
    "search-index-tidy": {
        "task": "errorsink.tasks.search_index_tidy",
        "schedule": phased(2.0, phase=1.3),
        "options": {"expires": 2.0},
    },
    # Every 5 minutes: a deleted project whose purge was cut short (a worker restarted) goes
    # on being removed; deleting a project also queues a run at once (errorsink/projects/purge.py).
    "projects-purge": {
        "task": "errorsink.tasks.projects_purge",
        "schedule": 300.0,
        "options": {"expires": 300.0},
    },
    "issues-backfill": {
        "task": "errorsink.tasks.issues_backfill",
        "schedule": 60.0,
        "options": {"expires": 60.0},
    },
}
# Alerts: links in notifications start with this address (set it to the dashboard's public
# one); email goes by EMAIL_URL (smtp://user:password@host:587/?tls=True), console by default.
ERRORSINK_PUBLIC_URL = os.environ.get("ERRORSINK_PUBLIC_URL", "http://localhost:8000")
_email = dj_email_url.parse(os.environ.get("EMAIL_URL", "console://"))
_email_options = {"host": _email["EMAIL_HOST"], "port": _email["EMAIL_PORT"],
                  "username": _email["EMAIL_HOST_USER"], "password": _email["EMAIL_HOST_PASSWORD"],
                  "use_tls": _email["EMAIL_USE_TLS"], "use_ssl": _email["EMAIL_USE_SSL"],
                  # A mail server that never answers must not hold a worker thread for long.
                  "timeout": _email["EMAIL_TIMEOUT"] or 10}  # fmt: skip
MAILERS = {
    "default": {
        "BACKEND": _email["EMAIL_BACKEND"],
        "OPTIONS": {} if "console" in _email["EMAIL_BACKEND"] else
        {key: value for key, value in _email_options.items() if value not in (None, "")},
    }
}  # fmt: skip
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "errorsink <alerts@localhost>")
# The dead-letter list is bounded: its newest entries, each item cut at a size (bytes).
ERRORSINK_DEAD_LETTERS_MAX = int(os.environ.get("ERRORSINK_DEAD_LETTERS_MAX", "10000"))
ERRORSINK_DEAD_ITEM_MAX_BYTES = int(os.environ.get("ERRORSINK_DEAD_ITEM_MAX_BYTES", "16384"))
# Alert webhooks and Slack go only to public addresses; this lists internal receivers an
# operator allows: comma-separated networks (10.1.0.0/16, 127.0.0.1) and host names.
ERRORSINK_WEBHOOK_ALLOW = os.environ.get("ERRORSINK_WEBHOOK_ALLOW", "")
ERRORSINK_INGEST_BATCH = int(os.environ.get("ERRORSINK_INGEST_BATCH", "4000"))
# Seconds after a worker's last heartbeat before another requeues the items it held: long
# enough that a worker busy with a large batch is never taken for dead (at least 3).
ERRORSINK_HEARTBEAT_TTL = max(3, int(os.environ.get("ERRORSINK_HEARTBEAT_TTL", "30")))
# Queue reader threads per Celery worker process (0: a worker that only runs tasks). While
# one thread's batch is in PostgreSQL, another parses the next (`make bench` measured 3 best).
# ERRORSINK_INGEST_CONSUMERS is its older name, still read.
ERRORSINK_QUEUE_READERS = int(
    os.environ.get("ERRORSINK_QUEUE_READERS", os.environ.get("ERRORSINK_INGEST_CONSUMERS", "3"))
)
