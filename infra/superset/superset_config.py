"""Configuration of the local Superset (infra/superset/superset.sh): loaded through
SUPERSET_CONFIG_PATH. State lives in SUPERSET_VAR_DIR (default infra/superset/var):
SQLite metadata, the secret key generated on first start, logs, the pid file."""

import os
from pathlib import Path

VAR = Path(os.environ.get("SUPERSET_VAR_DIR") or Path(__file__).resolve().parent / "var")

SECRET_KEY = (VAR / "secret_key").read_text().strip()  # made by superset.sh (openssl rand)
SQLALCHEMY_DATABASE_URI = f"sqlite:///{VAR / 'superset.db'}?check_same_thread=false"

# Dashboards must show what Druid holds now: no result cache between replays
DATA_CACHE_CONFIG = {"CACHE_TYPE": "NullCache"}
CACHE_CONFIG = {"CACHE_TYPE": "SimpleCache", "CACHE_DEFAULT_TIMEOUT": 300}
FILTER_STATE_CACHE_CONFIG = {"CACHE_TYPE": "SimpleCache", "CACHE_DEFAULT_TIMEOUT": 86400}
EXPLORE_FORM_DATA_CACHE_CONFIG = {"CACHE_TYPE": "SimpleCache", "CACHE_DEFAULT_TIMEOUT": 86400}

# Loopback only, plain http: no HSTS/CSP redirects to https
TALISMAN_ENABLED = False
CONTENT_SECURITY_POLICY_WARNING = False
SESSION_COOKIE_SECURE = False
RATELIMIT_ENABLED = False
# The embedded store is a local DuckDB file; Superset's metadata is SQLite
PREVENT_UNSAFE_DB_CONNECTIONS = False

FEATURE_FLAGS = {"DASHBOARD_CROSS_FILTERS": True, "DASHBOARD_NATIVE_FILTERS": True}
SUPERSET_WEBSERVER_TIMEOUT = 120
SQLLAB_TIMEOUT = 120
ROW_LIMIT = 50000
LOG_LEVEL = os.environ.get("SUPERSET_LOG_LEVEL", "WARNING")
