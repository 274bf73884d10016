"""Settings read from the environment once, at start-up.

Every process builds one :class:`Settings` with :func:`load_settings` and passes it down;
nothing reads ``os.environ`` at import time. With no URLs set, the system runs on its
embedded defaults (SQLite files and kombu's filesystem broker under ``PETTYCASH_VAR_DIR``);
with URLs set, the same code runs on PostgreSQL and Redis.
"""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

SERVICES: tuple[str, ...] = ("requisition", "approval", "payment", "ledger")
DATABASES: tuple[str, ...] = (*SERVICES, "gateway")


class ConfigError(RuntimeError):
    """A setting is missing or malformed; the process must not start."""


ENVS = ("development", "test", "demo", "production")
# Where the fault-injection switches (PETTYCASH_PROVIDER_FAULTS, ..._PROVIDER_LATENCY_MS,
# ..._FAULT_SLEEP, ..._FAULT_DUPLICATE_DELIVERY) and the payees' FAIL-* markers may act.
FAULT_ENVS = ("test", "demo")
FAULT_SWITCHES = (
    "PETTYCASH_PROVIDER_FAULTS",
    "PETTYCASH_PROVIDER_LATENCY_MS",
    "PETTYCASH_FAULT_SLEEP",
    "PETTYCASH_FAULT_DUPLICATE_DELIVERY",
)


# Rate limits (``limits`` notation, several separated by ";"), by name, each overridable with
# PETTYCASH_RATE_LIMIT_<NAME>: sign-in attempts per account and per client address, password
# reset requests (per address and per account), one-time codes per user, requests per API
# token (or session).
RATE_LIMITS: Mapping[str, str] = {
    "sign_in_account": "10/minute;50/hour",
    "sign_in_address": "30/minute;300/hour",
    "password_reset": "5/hour",
    "one_time_code": "10/minute",
    "api_token": "3000/minute",
}


@dataclass(frozen=True)
class IdentitySettings:
    """How people sign in and are kept to limits (the gateway's concern)."""

    session_idle_seconds: int = 30 * 60
    session_absolute_seconds: int = 12 * 3600
    # Where sessions live: a Redis URL, or empty for the gateway's database (embedded mode).
    session_store_url: str = ""
    # Where rate-limit counters live (``limits`` storage URI): Redis, or memory:// (embedded).
    rate_limit_storage_url: str = "memory://"
    rate_limits: Mapping[str, str] = field(default_factory=lambda: dict(RATE_LIMITS))
    lockout_failures: int = 10
    lockout_seconds: int = 15 * 60
    invitation_hours: int = 72
    password_reset_hours: int = 2
    # Argon2id cost (argon2-cffi's defaults are RFC 9106's low-memory profile).
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536
    argon2_parallelism: int = 4
    smtp_url: str = ""  # smtp://user:password@host:port or smtps://...; empty: mail goes to var/mail/
    mail_from: str = "Petty cash <pettycash@localhost>"
    public_url: str = "http://127.0.0.1:8000"  # how links in mail name the gateway
    trusted_proxies: int = 0  # reverse proxies in front whose X-Forwarded-* headers are believed
    demo_tokens: bool = True  # the demo users' bearer tokens work (never in production)


@dataclass(frozen=True)
class Settings:
    """Everything a process needs to know about its surroundings."""

    env: str
    var_dir: Path
    database_urls: Mapping[str, str]
    broker_url: str
    result_backend: str
    broker_transport_options: Mapping[str, object]
    command_wait_seconds: float
    relay_poll_seconds: float
    task_max_retries: int
    retry_backoff_seconds: float
    gateway_host: str
    gateway_port: int
    worker_concurrency: int
    secret_key: str
    otp_encryption_key: str = ""
    payment_max_retries: int = 3
    payment_max_executions: int = 3
    payment_retry_base_seconds: float = 1.0
    # A payment run whose total is above this (minor units) needs a second treasury officer.
    payment_run_dual_above_minor: int = 500_000
    # How many of a run's payments one disbursement job takes (services.payment.batches).
    payment_batch_size: int = 10
    provider_latency_ms: int = 0
    provider_faults: str = ""
    fault_sleep: Mapping[str, float] = field(default_factory=dict)
    max_queue_depth: int = 5000
    redelivery_seconds: float = 30.0
    duplicate_delivery: bool = False
    identity: IdentitySettings = field(default_factory=IdentitySettings)

    @property
    def faults_allowed(self) -> bool:
        """Whether fault injection may act here (payee markers included): tests and demos only."""
        return self.env in FAULT_ENVS

    @property
    def embedded(self) -> bool:
        """True when running on the filesystem broker (no Redis)."""
        return self.broker_url.startswith("filesystem://")

    def database_url(self, name: str) -> str:
        """The database URL of one service (or of the gateway)."""
        try:
            return self.database_urls[name]
        except KeyError:
            raise ConfigError(f"no database configured for {name!r}") from None


def _float(environ: Mapping[str, str], key: str, default: float) -> float:
    raw = environ.get(key)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{key} must be a number, got {raw!r}") from None


def _int(environ: Mapping[str, str], key: str, default: int) -> int:
    raw = environ.get(key)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{key} must be an integer, got {raw!r}") from None


def _fault_sleep(raw: str) -> dict[str, float]:
    """Parse ``task.name=seconds,other.task=seconds`` (fault injection for tests)."""
    faults: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        name, _, seconds = item.partition("=")
        try:
            faults[name.strip()] = float(seconds)
        except ValueError:
            raise ConfigError(f"PETTYCASH_FAULT_SLEEP: bad entry {item!r}") from None
    return faults


def _check_fault_switches(env: str, environ: Mapping[str, str]) -> None:
    """Fault injection is for tests and demos: a switch set anywhere else stops the process."""
    if env in FAULT_ENVS:
        return
    on = [key for key in FAULT_SWITCHES if environ.get(key, "").strip() not in ("", "0", "false", "no")]
    if on:
        raise ConfigError(f"{', '.join(on)} inject faults; set PETTYCASH_ENV to test or demo to use them (it is {env})")


def _flag(environ: Mapping[str, str], key: str) -> bool:
    return environ.get(key, "").lower() in ("1", "true", "yes")


def _local_secret(env: str, var_dir: Path, name: str = "secret_key", make: object = None) -> str:
    """Outside production, a random key kept in the var dir, so no secret lives in code."""
    if env == "production":
        raise ConfigError(f"PETTYCASH_{name.upper()} is required in production")
    path = var_dir / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        value = make() if callable(make) else secrets.token_urlsafe(32)
        with suppress(FileExistsError), os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
            f.write(str(value))
    return path.read_text().strip()


def _fernet_key() -> str:
    """A Fernet key (32 random bytes, url-safe base64), the format the OTP secrets are sealed with."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build the settings from the environment (``os.environ`` unless given)."""
    environ = os.environ if environ is None else environ
    env = environ.get("PETTYCASH_ENV", "development")
    if env not in ENVS:
        raise ConfigError(f"PETTYCASH_ENV must be one of {', '.join(ENVS)}, got {env!r}")
    _check_fault_switches(env, environ)
    var_dir = Path(environ.get("PETTYCASH_VAR_DIR", "var")).resolve()

    database_urls = _database_urls(environ, var_dir)
    broker_url = environ.get("PETTYCASH_BROKER_URL", "") or "filesystem://"
    transport_options, default_backend = _broker_options(environ, broker_url, var_dir)
    result_backend = environ.get("PETTYCASH_RESULT_BACKEND", "") or default_backend

    secret_key = environ.get("PETTYCASH_SECRET_KEY", "") or _local_secret(env, var_dir)

    return Settings(
        env=env,
        var_dir=var_dir,
        database_urls=database_urls,
        broker_url=broker_url,
        result_backend=result_backend,
        broker_transport_options=transport_options,
        command_wait_seconds=_float(environ, "PETTYCASH_COMMAND_WAIT_SECONDS", 2.0),
        relay_poll_seconds=_float(environ, "PETTYCASH_RELAY_POLL_SECONDS", 0.2),
        task_max_retries=_int(environ, "PETTYCASH_TASK_MAX_RETRIES", 5),
        retry_backoff_seconds=_float(environ, "PETTYCASH_RETRY_BACKOFF_SECONDS", 0.5),
        gateway_host=environ.get("PETTYCASH_GATEWAY_HOST", "127.0.0.1"),
        gateway_port=_int(environ, "PETTYCASH_GATEWAY_PORT", 8000),
        worker_concurrency=_int(environ, "PETTYCASH_WORKER_CONCURRENCY", 2),
        secret_key=secret_key,
        otp_encryption_key=environ.get("PETTYCASH_OTP_ENCRYPTION_KEY", "")
        or _local_secret(env, var_dir, "otp_encryption_key", _fernet_key),
        payment_max_retries=_int(environ, "PETTYCASH_PAYMENT_MAX_RETRIES", 3),
        payment_max_executions=_int(environ, "PETTYCASH_PAYMENT_MAX_EXECUTIONS", 3),
        payment_retry_base_seconds=_float(environ, "PETTYCASH_PAYMENT_RETRY_BASE_SECONDS", 1.0),
        payment_run_dual_above_minor=_int(environ, "PETTYCASH_PAYMENT_RUN_DUAL_ABOVE_MINOR", 500_000),
        payment_batch_size=_int(environ, "PETTYCASH_PAYMENT_BATCH_SIZE", 10),
        provider_latency_ms=_int(environ, "PETTYCASH_PROVIDER_LATENCY_MS", 0),
        provider_faults=environ.get("PETTYCASH_PROVIDER_FAULTS", ""),
        fault_sleep=_fault_sleep(environ.get("PETTYCASH_FAULT_SLEEP", "")),
        max_queue_depth=_int(environ, "PETTYCASH_MAX_QUEUE_DEPTH", 5000),
        redelivery_seconds=_float(environ, "PETTYCASH_REDELIVERY_SECONDS", 30.0),
        duplicate_delivery=_flag(environ, "PETTYCASH_FAULT_DUPLICATE_DELIVERY"),
        identity=_identity(environ, env, broker_url),
    )


def _identity(environ: Mapping[str, str], env: str, broker_url: str) -> IdentitySettings:
    """Sessions, rate limits, lockout, passwords and mail, from the environment."""
    redis_default = broker_url if broker_url.startswith(("redis://", "rediss://")) else ""
    limits = {
        name: environ.get(f"PETTYCASH_RATE_LIMIT_{name.upper()}", "") or rule for name, rule in RATE_LIMITS.items()
    }
    defaults = IdentitySettings()
    return IdentitySettings(
        session_idle_seconds=_int(environ, "PETTYCASH_SESSION_IDLE_SECONDS", defaults.session_idle_seconds),
        session_absolute_seconds=_int(environ, "PETTYCASH_SESSION_ABSOLUTE_SECONDS", defaults.session_absolute_seconds),
        session_store_url=environ.get("PETTYCASH_SESSION_STORE_URL", "") or redis_default,
        rate_limit_storage_url=environ.get("PETTYCASH_RATE_LIMIT_STORAGE_URL", "") or redis_default or "memory://",
        rate_limits=limits,
        lockout_failures=_int(environ, "PETTYCASH_LOCKOUT_FAILURES", defaults.lockout_failures),
        lockout_seconds=_int(environ, "PETTYCASH_LOCKOUT_SECONDS", defaults.lockout_seconds),
        invitation_hours=_int(environ, "PETTYCASH_INVITATION_HOURS", defaults.invitation_hours),
        password_reset_hours=_int(environ, "PETTYCASH_PASSWORD_RESET_HOURS", defaults.password_reset_hours),
        argon2_time_cost=_int(environ, "PETTYCASH_ARGON2_TIME_COST", defaults.argon2_time_cost),
        argon2_memory_kib=_int(environ, "PETTYCASH_ARGON2_MEMORY_KIB", defaults.argon2_memory_kib),
        argon2_parallelism=_int(environ, "PETTYCASH_ARGON2_PARALLELISM", defaults.argon2_parallelism),
        smtp_url=environ.get("PETTYCASH_SMTP_URL", ""),
        mail_from=environ.get("PETTYCASH_MAIL_FROM", "") or defaults.mail_from,
        public_url=(environ.get("PETTYCASH_PUBLIC_URL", "") or defaults.public_url).rstrip("/"),
        trusted_proxies=_int(environ, "PETTYCASH_TRUSTED_PROXIES", 0),
        demo_tokens=env != "production",
    )


def _database_urls(environ: Mapping[str, str], var_dir: Path) -> dict[str, str]:
    """Each database's URL: its own variable, else the template, else a SQLite file (embedded)."""
    template = environ.get("PETTYCASH_DATABASE_URL", "")
    urls: dict[str, str] = {}
    for name in DATABASES:
        url = environ.get(f"PETTYCASH_{name.upper()}_DATABASE_URL")
        if not url and template:
            if "{service}" not in template:
                raise ConfigError("PETTYCASH_DATABASE_URL must contain {service}")
            url = template.format(service=name)
        urls[name] = url or f"sqlite:///{var_dir / 'db' / f'{name}.sqlite'}"
    return urls


def _broker_options(environ: Mapping[str, str], broker_url: str, var_dir: Path) -> tuple[dict[str, object], str]:
    """The broker transport's options and the default result backend for that broker."""
    if broker_url.startswith("filesystem://"):
        queue_dir = str(var_dir / "broker" / "queue")
        options: dict[str, object] = {
            "data_folder_in": queue_dir,
            "data_folder_out": queue_dir,
            "control_folder": str(var_dir / "broker" / "control"),
            "store_processed": False,
            "polling_interval": _float(environ, "PETTYCASH_BROKER_POLL_SECONDS", 0.01),
        }
        return options, f"db+sqlite:///{var_dir / 'db' / 'results.sqlite'}"
    # Retries are scheduled well below this, so a message is only redelivered when the
    # worker holding it is gone (Celery's Redis guide: ETA/countdown < visibility).
    visibility = _int(environ, "PETTYCASH_VISIBILITY_TIMEOUT", 300)
    options = {
        "visibility_timeout": visibility,
        # Sweep for messages of dead workers often enough that a redelivery takes about
        # one visibility timeout, not kombu's default of ten sweeps of ten seconds.
        "unacked_restore_interval": max(1, min(10, visibility // 2)),
        "unacked_restore_throttle": 1,
    }
    return options, broker_url
