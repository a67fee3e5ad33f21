"""Settings for the shop, all read from the environment (django-environ).

With nothing set you get the embedded default: SQLite, a local-memory cache and Celery tasks run
eagerly in-process. ``DATABASE_URL``, ``REDIS_URL`` and ``CELERY_BROKER_URL`` switch to
PostgreSQL, Redis (cache, sessions, throttles, locks) and a real Celery broker.
``DJANGO_DEBUG=false`` is production mode: it refuses to start without ``SECRET_KEY`` and
``ALLOWED_HOSTS`` and turns on the HTTPS hardening that ``manage.py check --deploy`` asks for.
"""
from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
_env_file = env.str("ENV_FILE", default=str(BASE_DIR / ".env"))
if Path(_env_file).is_file():
    environ.Env.read_env(_env_file)
# After .env is read: SHOP_VAR_DIR may be set there like every other setting.
VAR_DIR = Path(env.str("SHOP_VAR_DIR", default=str(BASE_DIR / "var")))

DEBUG = env.bool("DJANGO_DEBUG", default=True)
# Debug mode is for `manage.py runserver` (make demo) and tests. A WSGI/ASGI server (gunicorn) refuses
# to serve it (shop/wsgi.py) unless this is set: a debug 500 page shows settings, hosts and URLs.
ALLOW_DEBUG_SERVER = env.bool("ALLOW_DEBUG_SERVER", default=False)

if DEBUG:
    SECRET_KEY = env.str("SECRET_KEY", default="dev-only-not-secret-" + "x" * 40)
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver", "[::1]"])
else:
    SECRET_KEY = env.str("SECRET_KEY", default="")
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[])
    missing = [name for name, value in (("SECRET_KEY", SECRET_KEY), ("ALLOWED_HOSTS", ALLOWED_HOSTS)) if not value]
    if missing:
        raise ImproperlyConfigured(
            "Production mode (DJANGO_DEBUG=false) needs " + " and ".join(missing) + " set in the environment; "
            "there is no fallback. Generate a key with: python -c \"import secrets; print(secrets.token_urlsafe(50))\""
        )

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "health_check",
    "shop",
    "catalog",
    "tracking",
    "recommendations",
    "recommendations.clusters",
]

MIDDLEWARE = [
    "shop.logging.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Each API query parameter once (shop/query_params.py): no session or visit for a refused request.
    "shop.query_params.SingleQueryValuesMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "shop.storefront.middleware.SessionOwnerMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Visits (and session rows) only for clients that showed they are browsers (tracking/gate.py).
    "tracking.middleware.VisitGateMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # A locked-out admin sign-in answers 429 (shop/login_guard.py).
    "shop.login_guard.LoginLockoutMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "shop.urls"
WSGI_APPLICATION = "shop.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "shop" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "tracking.context_processors.visit",
                "shop.storefront.context_processors.cart",
            ],
        },
    },
]

# --- Data stores -------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # The embedded demo writes from more than one thread (requests, a training run in the
    # background): readers beside a writer (WAL), writers that take the lock when they start
    # (no deadlocked lock upgrades) and wait for it instead of failing at once.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"})
    # The test database in a file, not Django's default in-memory one: tests that run manage.py in
    # a child process (tests/test_commands_exit.py) must see the rows the test wrote.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
if DATABASES["default"]["ENGINE"].endswith("postgresql"):
    # Persistent connections, checked before reuse, so a restarted PostgreSQL is reconnected
    # to on the next request without a manual step.
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)
# Parallel test runs on one PostgreSQL (several checkouts, CI beside a developer) need their own
# test database: TEST_DATABASE_NAME names it (default: "test_" + the database name).
if env.str("TEST_DATABASE_NAME", default=""):
    DATABASES["default"]["TEST"] = {"NAME": env.str("TEST_DATABASE_NAME")}
# Hot read statements (a visit's history for recommendations) as server-side prepared statements,
# planned once per connection. Set false behind a transaction-mode pooler such as pgbouncer.
DB_PREPARED_STATEMENTS = env.bool("DB_PREPARED_STATEMENTS", default=True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="shop"),
            "OPTIONS": {
                # django-redis's client, failing fast for a second after Redis did not answer: a
                # frozen Redis costs a request at most one socket timeout, not one per cache call.
                "CLIENT_CLASS": "shop.redis_cache.FailFastClient",
                # A Redis outage degrades (cache misses, no throttling) instead of breaking pages.
                "IGNORE_EXCEPTIONS": True,
                "SOCKET_CONNECT_TIMEOUT": 0.5,
                "SOCKET_TIMEOUT": 0.5,
            },
        }
    }
    DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "shop"}}
# Sessions are read from the database on every request (one primary-key lookup), never from Redis:
# with cached_db a write the cache missed during a stall (a logout, an emptied cart) came back from
# the cache when it resumed. A cache may slow the shop down, it may not resurrect state.
SESSION_ENGINE = "django.contrib.sessions.backends.db"

# --- Celery ------------------------------------------------------------------------------
_BROKER = env.str("CELERY_BROKER_URL", default="")
# No broker: tasks run eagerly, and Celery still builds a producer for them; the in-memory transport
# keeps kombu from reaching for a default AMQP host (its "No hostname was supplied" warning).
CELERY_BROKER_URL = _BROKER or "memory://localhost/"
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=REDIS_URL or None) or None
# Embedded default: no broker, so tasks run in-process at call time.
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not _BROKER)
CELERY_TASK_EAGER_PROPAGATES = True
# Without a broker a training run (the admin's "Retrain now", POST /api/models/train/) runs in a
# background thread of the web process: the request answers 202 at once and the run's page shows
# its progress, as with a worker. False runs it inside the request (the test suite does).
TRAINING_IN_THREAD = env.bool("TRAINING_IN_THREAD", default=CELERY_TASK_ALWAYS_EAGER)
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = "UTC"
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "recommendations.tasks.model_train": {"queue": "training"},
    "recommendations.tasks.model_train_scheduled": {"queue": "training"},
    "recommendations.tasks.tune_model": {"queue": "training"},
    "recommendations.clusters.tasks.clusters_build": {"queue": "training"},
}
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=600)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=540)
TRAINING_TASK_TIME_LIMIT = env.int("TRAINING_TASK_TIME_LIMIT", default=4 * 3600)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = False
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Bounded waits on a dead or frozen Redis (broker and result store): queueing a task from a web
# request gives up after about a second or two, and the caller reports it, instead of waiting 19 s
# (the result store's 20 reconnects) or the whole length of a stall (no socket timeout at all).
_REDIS_RETRY_ONCE = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}
CELERY_BROKER_CONNECTION_TIMEOUT = 1.0
CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_timeout": 0.5, "socket_connect_timeout": 0.5, **_REDIS_RETRY_ONCE}
CELERY_TASK_PUBLISH_RETRY_POLICY = _REDIS_RETRY_ONCE
CELERY_REDIS_SOCKET_TIMEOUT = 0.5
CELERY_REDIS_SOCKET_CONNECT_TIMEOUT = 0.5
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"retry_policy": _REDIS_RETRY_ONCE}
# A queued training run that no worker has started this long after a worker could have is failed
# by the reaper (its message was lost, or nothing consumes the training queue).
TRAINING_QUEUE_GRACE_SECONDS = env.int("TRAINING_QUEUE_GRACE_SECONDS", default=300)
# Keep Django's LOGGING (with the request id on every line) in the worker too.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE = {
    "popularity-refresh": {
        "task": "tracking.tasks.popularity_refresh",
        "schedule": timedelta(minutes=env.int("POPULARITY_REFRESH_MINUTES", default=5)),
    },
    "popular-pools-refresh": {
        "task": "recommendations.clusters.tasks.popular_pools_refresh",
        "schedule": timedelta(minutes=env.int("POPULARITY_REFRESH_MINUTES", default=5)),
    },
    "event-batch-keys-expire": {
        "task": "tracking.tasks.event_batch_keys_expire",
        "schedule": timedelta(hours=1),
    },
    "training-runs-reap": {
        "task": "recommendations.tasks.training_runs_reap",
        "schedule": timedelta(minutes=1),
    },
    "nightly-retrain": {
        "task": "recommendations.tasks.model_train_scheduled",
        "schedule": crontab(hour=env.int("RETRAIN_HOUR_UTC", default=3), minute=0),
    },
}

# --- API ---------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    # The API reads JSON only (a form cannot say "an empty list"), nested at most shop.parsers.MAX_DEPTH.
    "DEFAULT_PARSER_CLASSES": ["shop.parsers.JSONParser"],
    # Page numbers and sizes read as ASCII digits only (shop.validators).
    "DEFAULT_PAGINATION_CLASS": "shop.pagination.PageNumberPagination",
    "PAGE_SIZE": 20,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Atomic fixed-window counters in the default cache (Redis when REDIS_URL is set), clients named
    # by shop.client_ip (TRUSTED_PROXIES); a Redis outage falls back to per-process counters.
    "DEFAULT_THROTTLE_CLASSES": [
        "shop.throttling.AnonRateThrottle",
        "shop.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env.str("THROTTLE_ANON", default="600/min"),
        "user": env.str("THROTTLE_USER", default="3000/min"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Shop API",
    "DESCRIPTION": "Catalogue, interaction events and session-based recommendations (GRU4Rec).",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI assets come from drf-spectacular-sidecar, served by the shop itself: no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Experiments' status and mode share their field names with other components' choices.
    "ENUM_NAME_OVERRIDES": {
        "ExperimentStatusEnum": "recommendations.models.Experiment.Status",
        "ExperimentModeEnum": "recommendations.models.Experiment.Mode",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "shop.openapi.add_error_responses",
    ],
}

# --- Static files --------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns on every start when it is missing
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
    # Model artifacts (recommendations.artifacts): written once under content-addressed names. A
    # FileSystemStorage without a location keeps them under MODEL_DIR; another backend (S3, ...)
    # shares them between hosts, each process keeping a local copy under MODEL_CACHE_DIR.
    "models": {"BACKEND": env.str("MODEL_STORAGE_BACKEND", default="django.core.files.storage.FileSystemStorage")},
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Admin sign-in lockout (shop/login_guard.py), counted in the database: a cache outage cannot lift it.
LOGIN_FAILURES_PER_USERNAME = env.int("LOGIN_FAILURES_PER_USERNAME", default=5)
LOGIN_FAILURES_PER_ADDRESS = env.int("LOGIN_FAILURES_PER_ADDRESS", default=20)
LOGIN_LOCKOUT_MINUTES = env.int("LOGIN_LOCKOUT_MINUTES", default=15)

DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=2 * 1024 * 1024)

# --- Proxies: which X-Forwarded-* headers are believed -------------------------------------
# Empty (the default): no proxy; REMOTE_ADDR is the client and X-Forwarded-For/-Proto are ignored.
# A number: that many proxy hops in front, each appending to X-Forwarded-For. A list of addresses or
# networks: the proxies' own addresses. One function reads it: shop.client_ip.
TRUSTED_PROXIES = env.str("TRUSTED_PROXIES", default="")
try:
    from shop.client_ip import trusted_proxies_parse

    trusted_proxies_parse(TRUSTED_PROXIES)
except ValueError as exc:
    raise ImproperlyConfigured(str(exc)) from None

# --- Production hardening (what check --deploy asks for) -----------------------------------
if not DEBUG:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    if TRUSTED_PROXIES:
        # Only a configured proxy may say the client's connection was HTTPS.
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    # Secure cookies in production; only a test stack on plain-HTTP loopback turns them off.
    SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=True)
    CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=True)
    CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# --- Logging: one line per request, the request id on every line -------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "shop.logging.RequestIdFilter"}},
    "formatters": {
        "line": {"format": "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "line", "filters": ["request_id"]},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # The request middleware logs every request once; Django's own server log would repeat it.
        "django.server": {"level": "WARNING"},
        "django.request": {"level": "ERROR"},
        # faiss tries its AVX-512 and AVX2 builds first and logs each failed import at INFO (with a
        # ModuleNotFoundError text) before loading the one that fits: noise, not news.
        "faiss.loader": {"level": "WARNING"},
    },
}

# --- The shop's own settings ---------------------------------------------------------------
HEALTH_CHECK_CELERY = bool(_BROKER) and not CELERY_TASK_ALWAYS_EAGER

# tracking
VISIT_TIMEOUT_MINUTES = env.int("VISIT_TIMEOUT_MINUTES", default=30)
EVENTS_MAX_BATCH = 500
# How long an event batch's idempotency key replays its first answer (tracking.services._key_claim).
EVENTS_IDEMPOTENCY_HOURS = env.int("EVENTS_IDEMPOTENCY_HOURS", default=24)
POPULARITY_WINDOWS_DAYS = (1, 7, 30)

# recommendations
MODEL_DIR = Path(env.str("MODEL_DIR", default=str(VAR_DIR / "models")))
MODEL_CACHE_DIR = Path(env.str("MODEL_CACHE_DIR", default=str(VAR_DIR / "model-cache")))
TORCH_NUM_THREADS = env.int("TORCH_NUM_THREADS", default=1)
MODEL_RELOAD_INTERVAL_SECONDS = env.float("MODEL_RELOAD_INTERVAL_SECONDS", default=2.0)
# Each loaded model keeps its last answers per session (recommendations.caches.AnswerCache): the
# same history asked again (the page's block, a reload, the next page) is not scored again. Per
# model and process; ~1.5 KB an entry; 0 turns it off.
RECOMMEND_ANSWER_CACHE = env.int("RECOMMEND_ANSWER_CACHE", default=4096)
MODEL_ACTIVATE_REQUIRES_BETTER = env.bool("MODEL_ACTIVATE_REQUIRES_BETTER", default=True)
# What the models served by every process (the active one plus the running experiments' arms) may
# take, estimated from their artifacts (recommendations.experimenting.model_memory_mb): an
# experiment whose models would not fit is refused at start. 2 GB holds the active 40k-item model
# and two experiment arms of that size with room (docs/experiments.md has the measurement).
EXPERIMENT_MEMORY_BUDGET_MB = env.float("EXPERIMENT_MEMORY_BUDGET_MB", default=2048.0)
MODEL_TRAIN_PARAMS = env.str(
    "MODEL_TRAIN_PARAMS",
    default="loss=cross-entropy,layers=100,batch_size=32,dropout_p_embed=0.0,dropout_p_hidden=0.4,"
    "learning_rate=0.2,momentum=0.2,n_sample=2048,sample_alpha=0.5,logq=1.0,n_epochs=10",
)
ANN_MIN_CATALOGUE = env.int("ANN_MIN_CATALOGUE", default=100_000)
# /health/ also checks that this process serves the active model version.
HEALTH_CHECK_EXTRA = ["recommendations.health.ActiveModelLoaded"]
DEMO_DATA = env.str("DEMO_DATA", default="")
