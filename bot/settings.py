"""Settings from the environment, validated once at start-up.

A bad value must stop the process with one line that names the variable and says what is
allowed, so every parser here raises `SettingsError(variable, allowed)` rather than a bare
ValueError. The environment gives first values only: settings changed from Slack (channels,
intervals, rules) live in Postgres.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Callable, Mapping, TypeVar
from urllib.parse import urlsplit

from storage.storms import StormPolicy

T = TypeVar("T")

LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("json", "console")
SLACK_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")


# Variables whose values are secrets: an error names them and says what is wrong, never the value.
SECRET_VARIABLES = frozenset(
    {
        "SLACK_BOT_TOKEN",
        "SLACK_APP_TOKEN",
        "SLACK_SIGNING_SECRET",
        "PULSER_ADMIN_TOKEN",
        "HEROKU_API_KEY",
        "SENTRY_CLIENT_SECRET",
        "GITHUB_WEBHOOK_SECRET",
        "HEROKU_WEBHOOK_SECRET",
        "PULSER_WEBHOOK_TOKEN",
        "GITHUB_TOKEN",
        "PULSER_DEPLOY_WEBHOOK_SECRET",
    }
)
# Secret URLs: the path and query are the capability (a ping URL's check UUID); the host is not.
SECRET_URL_VARIABLES = frozenset({"PULSER_SELF_PING_URL"})
HIDDEN = "(hidden)"


class SettingsError(ValueError):
    """One invalid environment variable; str() is the one line shown to the operator.

    It is printed before log redaction is set up, so the value is shown only when it cannot hold a
    secret: never for a secret variable, a URL without its credentials and query (and, for a secret
    URL, without its path), and anything shaped like a token hidden by the log redactor's rules.
    """

    def __init__(self, variable: str, value: str, allowed: str):
        self.variable = variable
        self.allowed = allowed
        self.shown = shown_value(variable, value)
        super().__init__(f"invalid {variable}={self.shown}: {allowed}")


def shown_value(variable: str, value: str) -> str:
    """How a bad value may be printed: quoted and shortened, with every secret part removed."""
    if not value:
        return "(unset)"
    if variable in SECRET_VARIABLES:
        return "(hidden: a secret)"
    if "://" in value:
        value = _url_without_secrets(value, keep_path=variable not in SECRET_URL_VARIABLES)
    elif variable in SECRET_URL_VARIABLES:
        return "(hidden: a secret)"
    from bot.logging import SecretRedactor  # the same shapes the log lines hide (tokens, keys, DSNs)

    value = SecretRedactor().scrub_text(value)
    return repr(value if len(value) <= 60 else value[:57] + "...")


def _url_without_secrets(value: str, *, keep_path: bool) -> str:
    """A URL without user:password@, query and fragment (and without its path for a secret URL)."""
    try:
        parts = urlsplit(value)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # an unparsable port or bracket: show the scheme only
        return value.split("://", 1)[0] + "://" + HIDDEN
    shown = f"{parts.scheme}://" + ("…@" if "@" in parts.netloc else "") + f"{host}{port}"
    if keep_path:
        shown += parts.path
    elif parts.path not in ("", "/"):
        shown += "/" + HIDDEN
    if parts.query or parts.fragment:
        shown += "?" + HIDDEN
    return shown


@dataclass(frozen=True)
class Settings:
    slack_bot_token: str | None = field(default=None, repr=False)
    slack_app_token: str | None = field(default=None, repr=False)
    slack_api_url: str = "https://slack.com/api/"
    slack_signing_secret: str | None = field(default=None, repr=False)
    database_url: str | None = field(default=None, repr=False)
    data_dir: Path = Path(".pulser")
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    admin_token: str | None = field(default=None, repr=False)
    admins: tuple[str, ...] = ()
    slack_channel: str = "#ops-alerts"
    heartbeat_check_interval: int = 30
    heroku_api_key: str | None = field(default=None, repr=False)
    heroku_api_url: str = "https://api.heroku.com"
    monitored_apps: tuple[str, ...] = ()
    check_interval_minutes: int = 5
    sentry_client_secret: str | None = field(default=None, repr=False)
    github_webhook_secret: str | None = field(default=None, repr=False)
    heroku_webhook_secret: str | None = field(default=None, repr=False)
    webhook_token: str | None = field(default=None, repr=False)
    log_level: str = "info"
    log_format: str | None = None  # None: console on a TTY, JSON otherwise
    max_body_bytes: int = 1024 * 1024
    ledger_max_attempts: int = 5
    sandbox_port: int = 8081
    sandbox_host: str = "127.0.0.1"  # the sandbox's bind address; 0.0.0.0 in a container, so it can be opened
    sandbox_rate_limits: bool = True  # the sandbox refuses what Slack would (429); off only to measure something else
    public_url: str | None = None  # how heartbeat senders reach the sidecar; None: http://host:port
    heartbeat_history: int = 100
    self_ping_url: str | None = field(default=None, repr=False)  # a dead-man's switch for Pulser itself
    alert_group_window_minutes: int = 60  # a repeat within this joins the open incident
    alert_spike_count: int = 10  # this many prod occurrences within the spike window bump severity
    alert_spike_window_minutes: int = 5
    alert_update_debounce_seconds: int = 2  # repeats update a Slack message at most this often
    # Storms: this many new incidents a minute in one channel are posted one by one, further ones
    # fold into a digest until none has arrived for storm_quiet_seconds (0: never fold).
    storm_threshold: int = 4
    # Pace every Slack call by Pulser's budgets (alerts.outbound.budget). None: on, except against
    # an embedded sandbox told to enforce no limits. Off only to measure Pulser's own throughput.
    slack_pacing: bool | None = None
    storm_quiet_seconds: int = 120
    storm_own_criticals: int = 3
    webhook_silence_hours: int = 24  # a source quiet for longer shows as "silent" in /health
    github_token: str | None = field(default=None, repr=False)  # deploys: workflow_dispatch
    github_api_url: str = "https://api.github.com"
    deploy_webhook_secret: str | None = field(default=None, repr=False)  # deploys: signs generic deploy webhooks
    sandbox: bool | None = None  # PULSER_SANDBOX: True/False when chosen, None when left to the defaults
    config_path: Path | None = None  # PULSER_CONFIG: the YAML file of routing rules, silences, … (configuration as code)

    @property
    def public_base_url(self) -> str:
        return (self.public_url or f"http://{self.http_host}:{self.http_port}").rstrip("/")

    @property
    def use_sandbox(self) -> bool:
        """Run against the local Slack emulator: chosen with PULSER_SANDBOX=1, or nothing at all is
        configured (no tokens, no DATABASE_URL: the quickstart). Tokens missing next to a real
        database look like a secret that failed to mount, not like a try-out."""
        if self.slack_bot_token or self.slack_app_token:
            return False
        if self.sandbox is not None:
            return self.sandbox
        return self.database_url is None

    @property
    def sandbox_on_real_database(self) -> bool:
        """The sandbox chosen next to a real DATABASE_URL: fine for a look, never a healthy deployment."""
        return self.use_sandbox and self.database_url is not None

    @property
    def storm_policy(self) -> StormPolicy:
        return StormPolicy(
            threshold=self.storm_threshold,
            quiet=timedelta(seconds=self.storm_quiet_seconds),
            own_criticals=self.storm_own_criticals,
        )

    def slack_start_problem(self) -> str | None:
        """Why a process that runs the bot cannot start (one line naming what to set), or None."""
        if self.slack_bot_token or self.use_sandbox:
            return None
        why = "PULSER_SANDBOX=0 is set" if self.sandbox is False else "DATABASE_URL is set"
        return (
            f"SLACK_BOT_TOKEN and SLACK_APP_TOKEN are unset and {why}: set both tokens"
            " (a secret that did not mount?), or PULSER_SANDBOX=1 to run against the local Slack sandbox"
        )

    @property
    def use_embedded_postgres(self) -> bool:
        return not self.database_url

    def secrets(self) -> list[str]:
        """Every configured secret value, for the log redactor."""
        values = [
            self.slack_bot_token,
            self.slack_app_token,
            self.slack_signing_secret,
            self.admin_token,
            self.heroku_api_key,
            self.sentry_client_secret,
            self.github_webhook_secret,
            self.heroku_webhook_secret,
            self.webhook_token,
            self.self_ping_url,  # a ping URL is a capability: whoever has it can keep the check green
            self.github_token,
            self.deploy_webhook_secret,
        ]
        return [v for v in values if v]


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Build Settings from an environment mapping; raises SettingsError on the first bad value."""
    env = _Env(environ)
    bot_token = env.text("SLACK_BOT_TOKEN")
    app_token = env.text("SLACK_APP_TOKEN")
    if bot_token and not bot_token.startswith("xoxb-"):
        raise SettingsError("SLACK_BOT_TOKEN", bot_token, "expected a bot token starting with xoxb-")
    if app_token and not app_token.startswith("xapp-"):
        raise SettingsError("SLACK_APP_TOKEN", app_token, "expected an app-level token starting with xapp-")
    if bool(bot_token) != bool(app_token):
        missing = "SLACK_APP_TOKEN" if bot_token else "SLACK_BOT_TOKEN"
        raise SettingsError(missing, "", "set both SLACK_BOT_TOKEN and SLACK_APP_TOKEN, or neither (sandbox)")

    sandbox = env.get("PULSER_SANDBOX", None, _flag("PULSER_SANDBOX"))
    if sandbox and bot_token:
        raise SettingsError(
            "PULSER_SANDBOX", "1", "the sandbox stands in for Slack: unset SLACK_BOT_TOKEN and SLACK_APP_TOKEN, or PULSER_SANDBOX"
        )

    api_url = env.get("SLACK_API_URL", "https://slack.com/api/", _http_url("SLACK_API_URL"))
    if not api_url.endswith("/"):
        api_url += "/"

    return Settings(
        slack_bot_token=bot_token,
        slack_app_token=app_token,
        slack_api_url=api_url,
        slack_signing_secret=env.text("SLACK_SIGNING_SECRET"),
        database_url=env.get("DATABASE_URL", None, _postgres_dsn),
        data_dir=Path(env.text("PULSER_DATA_DIR") or ".pulser"),
        http_host=env.text("PULSER_HTTP_HOST") or "127.0.0.1",
        http_port=env.get("PULSER_HTTP_PORT", 8080, _int_between("PULSER_HTTP_PORT", 0, 65535, "a TCP port")),
        admin_token=env.text("PULSER_ADMIN_TOKEN"),
        admins=env.get("PULSER_ADMINS", (), _slack_user_ids),
        slack_channel=env.get("SLACK_CHANNEL", "#ops-alerts", _channel),
        heartbeat_check_interval=env.get(
            "HEARTBEAT_CHECK_INTERVAL", 30, _int_between("HEARTBEAT_CHECK_INTERVAL", 1, 3600, "seconds")
        ),
        heroku_api_key=env.text("HEROKU_API_KEY"),
        heroku_api_url=env.get("HEROKU_API_URL", "https://api.heroku.com", _http_url("HEROKU_API_URL", "https://api.heroku.com")).rstrip("/"),
        monitored_apps=env.get("MONITORED_APP_NAME", (), _heroku_app_names),
        check_interval_minutes=env.get(
            "CHECK_INTERVAL_MINUTES", 5, _int_between("CHECK_INTERVAL_MINUTES", 1, 60, "minutes")
        ),
        sentry_client_secret=env.text("SENTRY_CLIENT_SECRET"),
        github_webhook_secret=env.text("GITHUB_WEBHOOK_SECRET"),
        heroku_webhook_secret=env.text("HEROKU_WEBHOOK_SECRET"),
        webhook_token=env.text("PULSER_WEBHOOK_TOKEN"),
        log_level=env.get("LOG_LEVEL", "info", _choice("LOG_LEVEL", LOG_LEVELS)),
        log_format=env.get("LOG_FORMAT", None, _choice("LOG_FORMAT", LOG_FORMATS)),
        max_body_bytes=env.get(
            "PULSER_MAX_BODY_BYTES", 1024 * 1024, _int_between("PULSER_MAX_BODY_BYTES", 1024, 64 * 1024 * 1024, "bytes")
        ),
        ledger_max_attempts=env.get(
            "LEDGER_MAX_ATTEMPTS", 5, _int_between("LEDGER_MAX_ATTEMPTS", 1, 100, "attempts")
        ),
        sandbox_port=env.get(
            "PULSER_SANDBOX_PORT", 8081, _int_between("PULSER_SANDBOX_PORT", 0, 65535, "a TCP port")
        ),
        sandbox_host=env.get("PULSER_SANDBOX_HOST", "127.0.0.1", _bind_host("PULSER_SANDBOX_HOST")),
        sandbox_rate_limits=env.get("PULSER_SANDBOX_RATE_LIMITS", True, _flag("PULSER_SANDBOX_RATE_LIMITS")),
        public_url=env.get("PULSER_PUBLIC_URL", None, _http_url("PULSER_PUBLIC_URL", "https://pulser.example.com")),
        self_ping_url=env.get(
            "PULSER_SELF_PING_URL", None, _http_url("PULSER_SELF_PING_URL", "https://hc-ping.com/<your-check-uuid>")
        ),
        heartbeat_history=env.get(
            "HEARTBEAT_HISTORY", 100, _int_between("HEARTBEAT_HISTORY", 1, 100000, "heartbeats kept per app")
        ),
        alert_group_window_minutes=env.get(
            "ALERT_GROUP_WINDOW_MINUTES", 60, _int_between("ALERT_GROUP_WINDOW_MINUTES", 1, 10080, "minutes")
        ),
        alert_spike_count=env.get("ALERT_SPIKE_COUNT", 10, _int_between("ALERT_SPIKE_COUNT", 2, 100000, "occurrences")),
        alert_spike_window_minutes=env.get(
            "ALERT_SPIKE_WINDOW_MINUTES", 5, _int_between("ALERT_SPIKE_WINDOW_MINUTES", 1, 1440, "minutes")
        ),
        slack_pacing=env.get("PULSER_SLACK_PACING", None, _flag("PULSER_SLACK_PACING")),
        storm_threshold=env.get("PULSER_STORM_THRESHOLD", 4, _int_between("PULSER_STORM_THRESHOLD", 0, 1000, "incidents a minute")),
        storm_quiet_seconds=env.get(
            "PULSER_STORM_QUIET_SECONDS", 120, _int_between("PULSER_STORM_QUIET_SECONDS", 10, 86400, "seconds")
        ),
        storm_own_criticals=env.get(
            "PULSER_STORM_OWN_CRITICALS", 3, _int_between("PULSER_STORM_OWN_CRITICALS", 0, 100, "critical incidents")
        ),
        alert_update_debounce_seconds=env.get(
            "ALERT_UPDATE_DEBOUNCE_SECONDS", 2, _int_between("ALERT_UPDATE_DEBOUNCE_SECONDS", 0, 300, "seconds")
        ),
        github_token=env.text("GITHUB_TOKEN"),
        github_api_url=env.get("GITHUB_API_URL", "https://api.github.com", _http_url("GITHUB_API_URL", "https://api.github.com")).rstrip("/"),
        deploy_webhook_secret=env.text("PULSER_DEPLOY_WEBHOOK_SECRET"),
        webhook_silence_hours=env.get(
            "WEBHOOK_SILENCE_HOURS", 24, _int_between("WEBHOOK_SILENCE_HOURS", 1, 720, "hours")
        ),
        sandbox=sandbox,
        config_path=env.get("PULSER_CONFIG", None, _config_file),
    )


class _Env:
    """Reads variables; empty strings count as unset (a common `FOO=` in .env files)."""

    def __init__(self, environ: Mapping[str, str]):
        self._environ = environ

    def text(self, name: str) -> str | None:
        value = self._environ.get(name, "").strip()
        return value or None

    def get(self, name: str, default: T, parse: Callable[[str], T]) -> T:
        raw = self._environ.get(name, "").strip()
        if not raw:
            return default
        return parse(raw)


def _config_file(raw: str) -> Path:
    """An existing, readable file. Its content is checked when it is applied (a bad file must not
    stop a running Pulser), but a path that names nothing is a typo worth refusing at start-up."""
    path = Path(raw).expanduser()
    if not path.is_file():
        raise SettingsError("PULSER_CONFIG", raw, "expected the path of an existing YAML file (see `pulser config check`)")
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise SettingsError("PULSER_CONFIG", raw, f"the file cannot be read ({exc.strerror})") from None
    return path


def _int_between(name: str, low: int, high: int, unit: str) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        allowed = f"expected a whole number of {unit} from {low} to {high}"
        if unit == "a TCP port":
            allowed = f"expected a TCP port from {low} to {high}"
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(name, raw, allowed) from None
        if not low <= value <= high:
            raise SettingsError(name, raw, allowed)
        return value

    return parse


_YES = ("1", "true", "yes", "on")
_NO = ("0", "false", "no", "off")


def _flag(name: str) -> Callable[[str], bool]:
    def parse(raw: str) -> bool:
        value = raw.lower()
        if value not in _YES + _NO:
            raise SettingsError(name, raw, "expected 1 or 0 (also true/false, yes/no, on/off)")
        return value in _YES

    return parse


def _choice(name: str, choices: tuple[str, ...]) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.lower()
        if value not in choices:
            raise SettingsError(name, raw, "expected one of " + ", ".join(choices))
        return value

    return parse


def _http_url(name: str, example: str = "https://slack.com/api/") -> Callable[[str], str]:
    """`example` is what this variable usually holds, so the error shows a value that fits it."""

    def parse(raw: str) -> str:
        allowed = f"expected an http:// or https:// URL, e.g. {example}"
        try:
            parts = urlsplit(raw)
            parts.port  # noqa: B018 — raises ValueError for a port that is not a number
        except ValueError:  # e.g. an unclosed [IPv6 bracket
            raise SettingsError(name, raw, allowed) from None
        if parts.scheme not in ("http", "https") or not parts.netloc or " " in raw:
            raise SettingsError(name, raw, allowed)
        return raw

    return parse


def _bind_host(name: str) -> Callable[[str], str]:
    """An address to listen on: an IP (0.0.0.0 for every interface) or a host name, no scheme or port."""

    def parse(raw: str) -> str:
        try:
            return str(ipaddress.ip_address(raw.strip("[]")))
        except ValueError:
            pass
        if not re.match(r"^[A-Za-z0-9][A-Za-z0-9.\-]*$", raw):
            raise SettingsError(name, raw, "expected an address to listen on, e.g. 127.0.0.1 or 0.0.0.0 (every interface)")
        return raw

    return parse


def _postgres_dsn(raw: str) -> str:
    try:
        scheme = urlsplit(raw).scheme
    except ValueError:
        scheme = ""
    if scheme not in ("postgres", "postgresql"):
        # Shown without user:password@ and query (SettingsError), as every URL is.
        raise SettingsError("DATABASE_URL", raw, "expected postgresql://user:password@host:port/dbname")
    return raw


def _slack_user_ids(raw: str) -> tuple[str, ...]:
    ids = tuple(part.strip() for part in raw.split(",") if part.strip())
    for user_id in ids:
        if not SLACK_USER_ID.match(user_id):
            raise SettingsError("PULSER_ADMINS", raw, "expected comma-separated Slack user IDs like U012ABCDEF")
    return ids


def _channel(raw: str) -> str:
    if not re.match(r"^(#[a-z0-9][a-z0-9_\-]{0,79}|[CG][A-Z0-9]{2,})$", raw):
        raise SettingsError("SLACK_CHANNEL", raw, "expected a channel name like #ops-alerts or a channel ID like C012ABCDEF")
    return raw


def _heroku_app_names(raw: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in raw.split(",") if part.strip())
    for name in names:
        if not re.match(r"^[a-z][a-z0-9-]{1,29}$", name):
            raise SettingsError(
                "MONITORED_APP_NAME", raw, "expected comma-separated Heroku app names (lowercase letters, digits, dashes)"
            )
    return names
