"""One Pulser process: starts its parts in order and stops them in reverse.

`pulser run` runs everything; `pulser bot` and `pulser sidecar` run one half each and meet only in
Postgres. Start order: database (embedded if DATABASE_URL is unset) → migrations → scheduler →
Slack (sandbox if no tokens) → sidecar. Stop order is the reverse, and the Socket Mode handler
drains first: it stops taking envelopes, lets in-flight ones finish, and hands unfinished ledger
rows back for another process to retry.
"""

from __future__ import annotations

import asyncio
import signal
import time
from datetime import datetime, timedelta, timezone
from dataclasses import dataclass, replace
from typing import Awaitable, Literal, TypeVar

import aiohttp
import asyncpg
import structlog
from aiohttp import web
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, JobExecutionEvent

from bot import __version__
from bot.metrics import Metrics
from bot.ports import binding
from bot.scheduler import build_scheduler
from bot.settings import Settings
from alerts.heartbeat_writer import HeartbeatWriter
from bot.sidecar import build_sidecar, start_sidecar
from bot.slack_app import build_app, build_delivery_client, build_web_client
from bot.settings import SettingsError
from bot.socket_mode import ConnectionSupervisor, LedgerSocketModeHandler
from handlers.http.health import PartReports, overall_status
from handlers.slack.services import SlackServices
from alerts.channels import ChannelResolver
from alerts.config_sync import ConfigSync
from alerts.outbound.budget import SlackBudget
from alerts.outbound.paced_session import paced_session
from alerts.outbound.slack import CHANNEL_ERRORS, SlackDelivery
from alerts.incident_actions import IncidentActions
from alerts.integrations import Integrations
from alerts.outbound.incidents import IncidentNotifier
from alerts.deploys import Deploys
from alerts.heartbeat_incidents import HeartbeatIncidents
from alerts.outbound.events import EventNotifier
from alerts.outbound.dispatch import OutboundDispatcher
from alerts.escalation.engine import EscalationEngine
from alerts import oncall
from alerts.heroku_monitor import HerokuMonitor, HerokuSettings
from alerts.home import HomeRefresher, dashboard_view
from alerts.platform_events import PlatformEvents
from alerts.pipeline import AlertPipeline, PipelineSettings
from alerts.sources.heroku_api import HerokuClient
from alerts.sources import SOURCES
from jobs import retention
from jobs.heartbeat_watcher import HeartbeatWatcher
from jobs.heroku_poller import TICK_SECONDS as HEROKU_TICK_SECONDS, HerokuPoller
from jobs.incident_sweep import INTERVAL_SECONDS as SWEEP_SECONDS, IncidentSweep
from jobs.ledger_worker import LedgerWorker, worker_name
from jobs.self_ping import INTERVAL_SECONDS, SelfPing
from jobs.oncall import NOTICE_TICK_SECONDS, REFRESH_TICK_SECONDS, CalendarRefresh, ShiftNotices
from alerts.oncall.imports import CalendarImports
from storage import applications, database, deliveries, envelopes, incidents, notifications, outbound, platform_events, workers
from storage import deploys as deploy_store
from storage.database import DATABASE_ERRORS
from storage.embedded import EmbeddedPostgres
from storage.migrations import apply_migrations

log = structlog.get_logger(__name__)

Mode = Literal["run", "bot", "sidecar"]
SANDBOX_ON_REAL_DATABASE = (
    "sandbox: no Slack tokens; this Pulser talks to the local Slack sandbox, not to Slack,"
    " although DATABASE_URL names a real database (PULSER_SANDBOX=1)"
)
T = TypeVar("T")
# /health shows an outbound failure this long after it happened.
OUTBOUND_FAILURES_SHOWN = timedelta(hours=1)


def _started(part: T | None, what: str) -> T:
    """A part that start() builds; a clear error (not an `assert`, which `python -O` strips) when
    it is used before start() or after stop()."""
    if part is None:
        raise RuntimeError(f"{what} is not running: start() the runtime first")
    return part


@dataclass
class SlackEndpoint:
    bot_token: str
    app_token: str
    api_url: str


class Runtime:
    drain_timeout: float = 10.0

    def __init__(self, settings: Settings, mode: Mode = "run", *, metrics: Metrics | None = None):
        self.settings = settings
        self.mode = mode
        self.metrics = metrics or Metrics(__version__)
        self.metrics.set_mode(mode)
        self.worker_name = worker_name()
        self.embedded: EmbeddedPostgres | None = None
        self.pool: asyncpg.Pool | None = None
        self.scheduler = build_scheduler()
        self.ledger_worker: LedgerWorker | None = None
        self.sandbox = None
        self.slack: SlackEndpoint | None = None
        self.app = None
        self.services: SlackServices | None = None
        self.socket: LedgerSocketModeHandler | None = None
        self.supervisor: ConnectionSupervisor | None = None
        self.watcher: HeartbeatWatcher | None = None
        self.self_ping: SelfPing | None = None
        self.pipeline: AlertPipeline | None = None
        self.incident_actions: IncidentActions | None = None
        self.integrations: Integrations | None = None
        self.incident_notifier: IncidentNotifier | None = None
        self.delivery: SlackDelivery | None = None
        self.sweep: IncidentSweep | None = None
        self.heroku: HerokuMonitor | None = None
        self.heroku_poller: HerokuPoller | None = None
        self.events: PlatformEvents | None = None
        self.deploys: Deploys | None = None
        self.event_notifier: EventNotifier | None = None
        self.escalation: EscalationEngine | None = None
        self.dispatcher: OutboundDispatcher | None = None
        self._delivery_session: aiohttp.ClientSession | None = None
        self._beat_task: asyncio.Task | None = None
        self.home_refresher: HomeRefresher | None = None
        self.channels = ChannelResolver()  # without Slack (a sandbox-less sidecar): names are kept
        self.job_runs: dict[str, dict] = {}
        self._connect_task: asyncio.Task | None = None
        self.http_runner: web.AppRunner | None = None
        self.heartbeat_writer: HeartbeatWriter | None = None
        self.http_port: int | None = None
        self.started_at = time.time()
        self._health_parts = PartReports()
        self.config_sync: ConfigSync | None = None
        self.config_poll_seconds: float | None = None  # None: alerts.config_sync.POLL_SECONDS
        self.slack_web_client = None  # asks Slack about channels and users (also in a sidecar with tokens)
        self.calendar_imports: CalendarImports | None = None  # imported on-call layers
        self.shift_notices: ShiftNotices | None = None

    @property
    def runs_bot(self) -> bool:
        return self.mode in ("run", "bot")

    @property
    def runs_sidecar(self) -> bool:
        return self.mode in ("run", "sidecar")

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        dsn = self.settings.database_url
        if dsn is None:
            self.embedded = EmbeddedPostgres(self.settings.data_dir)
            dsn = await self.embedded.start()
        self.pool = await database.create_pool(dsn)
        self._listen = lambda: database.connect_listener(dsn)
        await apply_migrations(self.pool)
        await self._resolve_default_channel()
        # Alive from here on: work this process claims is taken over by another within seconds of
        # its death (storage.workers), so it says so before it claims anything.
        await workers.beat(self.pool, self.worker_name)
        self._beat_task = asyncio.create_task(self._beat(), name="worker-beat")

        self.ledger_worker = LedgerWorker(
            self.pool,
            max_attempts=self.settings.ledger_max_attempts,
            name=self.worker_name,
            on_outcome=self.metrics.envelope_outcome,
        )
        self._start_pipeline()
        self.scheduler.add_listener(self._job_ran, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
        self.scheduler.start()
        self.metrics.scheduler_running.set(1)

        if self.runs_bot:
            await self._start_slack()
        if self.settings.config_path is not None:
            await self._start_config_sync(self.settings.config_path)
        self.scheduler.add_job(self.ledger_worker.run_once, "interval", seconds=2, id="ledger-worker")
        self.scheduler.add_job(
            retention.prune, "interval", minutes=10, id="retention",
            kwargs={"pool": self.pool, "keep_heartbeats": self.settings.heartbeat_history},
        )
        # Every process watches deadlines (claims are exactly-once across processes) and opens the
        # incidents; their messages are delivered by a process that holds the Slack connection.
        self.watcher = HeartbeatWatcher(
            self.pool,
            _started(self.pipeline, "the alert pipeline"),
            max_sleep=self.settings.heartbeat_check_interval,
            listen=self._listen,
            on_claimed=self._on_missed,
        )
        await self.watcher.start()
        # Every database gauge has its series (0 included) before the first scrape: a delta() or
        # increase() in an alert rule needs that earlier sample.
        await self.refresh_gauges()
        self.scheduler.add_job(self.refresh_gauges, "interval", seconds=15, id="metrics-refresh")
        sweep = _started(self.sweep, "the incident sweep")
        self.scheduler.add_job(sweep.run_once, "interval", seconds=SWEEP_SECONDS, id="incident-sweep")
        # On-call: every process refreshes imported calendars (claimed once per round in Postgres).
        self.calendar_imports = CalendarImports(self.pool, slack_client=self.slack_web_client)
        self.scheduler.add_job(
            CalendarRefresh(self.calendar_imports).run_once, "interval", seconds=REFRESH_TICK_SECONDS, id="oncall-calendars",
            next_run_time=datetime.now(timezone.utc) + timedelta(seconds=5),
        )
        if self.app is not None:  # shift-start DMs go out where the Slack connection is
            self.shift_notices = ShiftNotices(self.pool, self.app.client)
            self.scheduler.add_job(
                self.shift_notices.run_once, "interval", seconds=NOTICE_TICK_SECONDS, id="oncall-notices",
                next_run_time=datetime.now(timezone.utc) + timedelta(seconds=5),
            )
        _started(self.escalation, "the escalation engine").start()
        self.scheduler.add_job(
            _started(self.heroku_poller, "the Heroku poller").tick, "interval", seconds=HEROKU_TICK_SECONDS, id="heroku-poller",
            next_run_time=datetime.now(timezone.utc) + timedelta(seconds=1),
        )

        if self.settings.self_ping_url:
            self.self_ping = SelfPing(
                self.settings.self_ping_url, self._healthy, on_outcome=lambda o: self.metrics.self_pings.labels(o).inc()
            )
            self.scheduler.add_job(
                self.self_ping.run_once, "interval", seconds=INTERVAL_SECONDS, id="self-ping",
                next_run_time=datetime.now(timezone.utc) + timedelta(seconds=5),  # once the parts are up
            )

        if self.runs_sidecar:
            self.heartbeat_writer = HeartbeatWriter(
                self.pool,
                _started(self.pipeline, "the alert pipeline"),
                on_batch=self.metrics.heartbeat_batch_size.observe,
            )
            await self.heartbeat_writer.start()
            app = build_sidecar(
                metrics=self.metrics,
                health_report=self.health_report,
                max_body_bytes=self.settings.max_body_bytes,
                pool=self.pool,
                writer=self.heartbeat_writer,
                admin_token=self.settings.admin_token,
                default_channel=self.settings.slack_channel,
                public_base_url=self.public_base_url,
                webhook_secrets=self.webhook_secrets(),
                worker_name=self.worker_name,
                accept_envelope=self.ledger_worker.process_soon,
                delivery_report=self.delivery_report,
                status_report=self.status_report,
                channels=self.channels,
                incident_actions=self.incident_actions,
                integrations=self.integrations,
                slack_client=self.slack_web_client,
                calendar_imports=self.calendar_imports,
            )
            s = self.settings
            with binding(s.http_host, s.http_port, host_variable="PULSER_HTTP_HOST", port_variable="PULSER_HTTP_PORT"):
                self.http_runner, self.http_port = await start_sidecar(app, s.http_host, s.http_port)
            log.info("sidecar.listening", url=f"http://{self.settings.http_host}:{self.http_port}")
            if self.services is not None and self.settings.public_url is None:
                self.services.public_base_url = f"http://{self.settings.http_host}:{self.http_port}"
        log.info("pulser.started", mode=self.mode, version=__version__)

    async def _start_config_sync(self, path) -> None:
        """Apply PULSER_CONFIG before the API opens, then on SIGHUP and whenever the file changes."""
        sync = ConfigSync(
            _started(self.pool, "the database pool"), path, channels=self.channels,
            notify=self._tell_default_channel if self.app is not None else None,
        )
        if self.config_poll_seconds is not None:
            sync.poll_seconds = self.config_poll_seconds
        self.config_sync = sync
        await sync.apply("start")
        sync.start_watching()
        try:
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, sync.reload)
        except (NotImplementedError, RuntimeError, ValueError):  # no signals here (not the main thread)
            log.warning("config.sighup_unavailable")

    async def _tell_default_channel(self, text: str) -> None:
        await self.app.client.chat_postMessage(channel=self.settings.slack_channel, text=text)

    def _start_pipeline(self) -> None:
        """Every process turns webhook deliveries into incidents (the sidecar records them, its
        ledger worker processes them); only a process with Slack delivers the messages."""
        pool = _started(self.pool, "the database pool")
        ledger_worker = _started(self.ledger_worker, "the ledger worker")
        s = self.settings
        self.pipeline = AlertPipeline(
            pool,
            PipelineSettings(
                default_channel=s.slack_channel,
                group_window=timedelta(minutes=s.alert_group_window_minutes),
                render_debounce=timedelta(seconds=s.alert_update_debounce_seconds),
                spike_count=s.alert_spike_count,
                spike_window=timedelta(minutes=s.alert_spike_window_minutes),
                storms=s.storm_policy,
            ),
            on_change=self._incidents_changed,
            on_outcome=lambda outcome: self.metrics.incident_events.labels(outcome).inc(),
            on_alert=self.metrics.count_alert,
        )
        for name in SOURCES:  # GitHub deliveries also become ci/deploy platform events (self.events, below)
            ledger_worker.register(name, self.pipeline.process_envelope if name != "github" else (
                lambda envelope: self.events.process_github(envelope, self.pipeline.process_envelope)))
        self.incident_actions = IncidentActions(pool, on_change=self._incidents_changed)
        self.sweep = IncidentSweep(self.incident_actions, self.pipeline)
        # Every process walks due escalation steps (claims are exactly-once); what they send goes
        # out through the dispatcher of a process that holds the Slack connection (DMs need it).
        self.escalation = EscalationEngine(
            pool, on_call=oncall.on_call, storms=s.storm_policy, listen=self._listen,
            on_enqueued=lambda: self.dispatcher.wake() if self.dispatcher is not None else None,
        )
        self.integrations = Integrations(
            pool, secrets=self.webhook_secrets, public_url=self.public_base_url, sidecar_url=self.sidecar_url,
            heroku_apps=self._heroku_apps,
        )
        self.heroku = HerokuMonitor(
            pool,
            HerokuClient(s.heroku_api_key, s.heroku_api_url),
            self.pipeline,
            first_settings=HerokuSettings(s.monitored_apps, s.slack_channel, s.check_interval_minutes),
            api_key=s.heroku_api_key,
            on_settings_changed=self._heroku_settings_changed,
            on_rollback=lambda outcome: self.metrics.rollbacks.labels(outcome).inc(),
        )
        self.heroku_poller = HerokuPoller(self.heroku)
        # Heroku deliveries feed detection (state-based), not the plain alert path.
        ledger_worker.register("heroku", self.heroku.process_webhook)
        self.events = PlatformEvents(
            pool, default_channel=s.slack_channel, on_change=self._events_changed, on_deploy=self.metrics.deployment
        )
        ledger_worker.register("events", self.events.process_envelope)
        self.deploys = Deploys(
            pool, self.events, github_token=s.github_token, github_api_url=s.github_api_url,
            heroku_client=self.heroku.client, webhook_secret=s.deploy_webhook_secret,
            on_deploy=self.metrics.deployment,
        )

    def webhook_secrets(self) -> dict[str, str | None]:
        """Webhook secrets by environment variable name; each source names the one it verifies with."""
        return {
            "SENTRY_CLIENT_SECRET": self.settings.sentry_client_secret,
            "GITHUB_WEBHOOK_SECRET": self.settings.github_webhook_secret,
            "HEROKU_WEBHOOK_SECRET": self.settings.heroku_webhook_secret,
            "PULSER_WEBHOOK_TOKEN": self.settings.webhook_token,
        }

    def _job_ran(self, event: JobExecutionEvent) -> None:
        """Remember each job's last run (and its error) for /health and `/pulser health`."""
        error = f"{type(event.exception).__name__}: {event.exception}" if event.exception else None
        self.job_runs[event.job_id] = {"at": datetime.now(timezone.utc).isoformat(), "error": error}
        if error:
            log.error("scheduler.job_failed", job=event.job_id, error=error)

    def _heroku_settings_changed(self) -> None:
        """Apply at once: run the poller's tick now instead of at its next 15-second mark."""
        job = self.scheduler.get_job("heroku-poller") if self.scheduler.running else None
        if job is not None:
            job.modify(next_run_time=datetime.now(timezone.utc))

    def _events_changed(self) -> None:
        if self.event_notifier is not None:
            self.event_notifier.wake()

    def _incidents_changed(self) -> None:
        if self.incident_notifier is not None:
            self.incident_notifier.wake()
        if self.home_refresher is not None:
            self.home_refresher.wake()

    def _incident_posted(self, incident: dict, at: datetime) -> None:
        self.metrics.alert_to_slack.observe(max(0.0, (at - incident["first_seen"]).total_seconds()))

    async def _resolve_default_channel(self) -> None:
        """SLACK_CHANNEL as a channel ID, before anything is built with it, so the default channel
        is stored, compared and shown like every channel saved later (alerts.channels)."""
        s = self.settings
        if self.runs_bot:
            await self._open_slack()
        elif s.slack_bot_token and s.slack_app_token:  # a sidecar still asks Slack about the channels it saves
            self.slack = SlackEndpoint(s.slack_bot_token, s.slack_app_token, s.slack_api_url)
        if self.slack is None:
            return
        self.slack_web_client = build_web_client(self.slack.bot_token, self.slack.api_url)
        self.channels = ChannelResolver(self.slack_web_client)
        channel = await self.channels.resolve(self.settings.slack_channel, timeout=10)
        if channel != self.settings.slack_channel:
            log.info("slack.default_channel_resolved", name=self.settings.slack_channel, channel=channel)
            self.settings = replace(self.settings, slack_channel=channel)

    async def _open_slack(self) -> None:
        """Where the bot's Slack is: the workspace the tokens name, or the sandbox (started here)."""
        if self.settings.use_sandbox:
            from sandbox import SlackSandbox

            self.sandbox = SlackSandbox(
                host=self.settings.sandbox_host,
                port=self.settings.sandbox_port,
                rate_limits=self.settings.sandbox_rate_limits,
            )
            # People to click as (an admin and a member) and the default alert channel, so a local
            # try-out just works.
            self.sandbox.add_try_out_workspace(self.settings.slack_channel, admins=self.settings.admins)
            with binding(
                self.settings.sandbox_host, self.settings.sandbox_port,
                host_variable="PULSER_SANDBOX_HOST", port_variable="PULSER_SANDBOX_PORT",
            ):
                await self.sandbox.start()
            self.slack = SlackEndpoint(SlackSandbox.BOT_TOKEN, SlackSandbox.APP_TOKEN, self.sandbox.api_url)
            log.info(
                "sandbox.listening",
                url=self.sandbox.base_url,
                hint="no Slack tokens set: Pulser talks to the local Slack sandbox; open the URL to watch it",
                try_it=f"curl -s -X POST {self.sandbox.base_url}/sandbox/command -d command=/pulser -d text=help",
            )
            if self.settings.sandbox_on_real_database:
                log.warning("sandbox.on_real_database", detail=SANDBOX_ON_REAL_DATABASE)
        elif self.settings.slack_bot_token and self.settings.slack_app_token:
            self.slack = SlackEndpoint(
                self.settings.slack_bot_token, self.settings.slack_app_token, self.settings.slack_api_url
            )
        else:  # the CLI says so before start-up; this keeps a library caller from a Slack-less bot
            raise SettingsError("SLACK_BOT_TOKEN", "", self.settings.slack_start_problem() or "set both Slack tokens")

    async def _start_slack(self) -> None:
        pool = _started(self.pool, "the database pool")
        ledger_worker = _started(self.ledger_worker, "the ledger worker")
        slack = _started(self.slack, "the Slack endpoint")
        self.services = SlackServices(
            pool=pool,
            admins=self.settings.admins,
            default_channel=self.settings.slack_channel,
            public_base_url=self.settings.public_base_url,
            heartbeat_history=self.settings.heartbeat_history,
            channels=self.channels,
        )
        # One paced session for every Slack Web API call of this process (see alerts.outbound.budget).
        # Budgets are off only when told so, or against a sandbox told to enforce no limits
        # (throughput benchmarks).
        pacing = self.settings.slack_pacing
        if pacing is None:
            pacing = self.sandbox is None or self.settings.sandbox_rate_limits
        self.slack_budget = SlackBudget(pool, enabled=pacing)
        self._delivery_session = paced_session(self.slack_budget, on_refused=self.metrics.slack_refused)
        self.app = build_app(
            slack.bot_token, slack.api_url, self.services, metrics=self.metrics, session=self._delivery_session
        )
        self.socket = LedgerSocketModeHandler(
            self.app,
            slack.app_token,
            pool=pool,
            metrics=self.metrics,
            worker=self.worker_name,
            max_attempts=self.settings.ledger_max_attempts,
        )
        ledger_worker.register("slack", self.socket.reprocess)
        self.services.heartbeat_incidents = HeartbeatIncidents(pool, _started(self.pipeline, "the alert pipeline"))
        self.services.incident_actions = self.incident_actions
        self.services.integrations = self.integrations
        self.services.heroku = self.heroku
        self.services.health_report = self.health_report
        self.services.events = self.events
        self.services.deploys = self.deploys
        self.services.escalation = self.escalation
        self.home_refresher = HomeRefresher(
            pool, self.app.client, build_view=lambda p: dashboard_view(p, integrations=self.integrations)
        )
        self.services.home = self.home_refresher
        self.home_refresher.start()
        self.delivery = SlackDelivery(
            pool,
            build_delivery_client(slack.bot_token, slack.api_url, self._delivery_session),
            on_result=self.metrics.slack_call_result,
            on_latency=self.metrics.observe_slack_call,
        )
        self.incident_notifier = IncidentNotifier(
            pool,
            self.delivery,
            default_channel=self.settings.slack_channel,
            debounce=timedelta(seconds=self.settings.alert_update_debounce_seconds),
            listen=self._listen,
            on_posted=self._incident_posted,
            storm_policy=self.settings.storm_policy,
            worker=self.worker_name,
        )
        self.incident_notifier.start()
        self.event_notifier = EventNotifier(
            pool, self.delivery, default_channel=self.settings.slack_channel, listen=self._listen
        )
        self.event_notifier.start()
        self.dispatcher = OutboundDispatcher(
            pool, slack=self.delivery, worker=self.worker_name, listen=self._listen,
            on_result=self.metrics.outbound_result,
        )
        self.dispatcher.start()
        self.supervisor = ConnectionSupervisor(self.socket.client, self.metrics, backoff=self.socket.backoff)
        self.supervisor.start()
        # connect() retries until it succeeds; it must not hold up the rest of start-up.
        self._connect_task = asyncio.create_task(self.socket.connect_async(), name="socket-connect")

    def sidecar_url(self) -> str:
        """Where this process reaches the sidecar itself (the integration test's deliveries): its
        own bound port when it serves one, else where senders reach it (PULSER_PUBLIC_URL)."""
        if self.runs_sidecar and self.http_port is not None:
            host = self.settings.http_host
            host = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
            host = f"[{host}]" if ":" in host else host
            return f"http://{host}:{self.http_port}"
        return self.settings.public_base_url

    async def _heroku_apps(self) -> list[str]:
        heroku = self.heroku
        return list((await heroku.settings()).apps) if heroku is not None else []

    def public_base_url(self) -> str:
        """Where heartbeat senders reach the sidecar: PULSER_PUBLIC_URL, else the bound address
        (resolved at call time, since port 0 is only known once bound)."""
        if self.settings.public_url is not None or self.http_port is None:
            return self.settings.public_base_url
        return f"http://{self.settings.http_host}:{self.http_port}"

    async def _healthy(self) -> bool:
        """What the self-ping reports: the same judgement as /health's 200."""
        report = await self.health_report()
        return overall_status(report["components"]) == "ok"

    def _on_missed(self, count: int) -> None:
        self.metrics.heartbeats_missed.inc(count)  # the pipeline woke the notifier and App Home

    async def refresh_gauges(self) -> None:
        """Gauges that come from the database are refreshed on a timer, not at scrape time."""
        if self.pool is None:
            return  # not started, or stopped: nothing to read
        try:
            self.metrics.known_deploy_services(await deploy_store.service_names(self.pool))
            for status, count in (await applications.count_by_state(self.pool)).items():
                self.metrics.heartbeat_apps.labels(status).set(count)
            for status, count in (await incidents.count_by_status(self.pool)).items():
                self.metrics.incidents.labels(status).set(count)
            for status, count in (await envelopes.status_counts(self.pool)).items():
                self.metrics.ledger_envelopes.labels(status).set(count)
            for row in await outbound.totals(self.pool):
                self.metrics.outbound_deliveries.labels(row["kind"], row["status"]).set(row["n"])
            inbound = sorted({*SOURCES, "events"})  # webhook sources and POST /events
            for source, last in (await envelopes.last_received_by_source(self.pool, inbound)).items():
                if last is not None:
                    self.metrics.webhook_last_received.labels(source).set(last.timestamp())
        except DATABASE_ERRORS as exc:
            log.warning("metrics.refresh_failed", error=f"{type(exc).__name__}: {exc}")
        if self.heroku is not None:  # this process's own polls; each process claims cycles in turn
            if self.heroku.status.last_success_at is not None:
                self.metrics.task_finished("heroku_poll", ok=True, at=self.heroku.status.last_success_at)
            if self.heroku.status.last_error_at is not None:
                self.metrics.task_finished("heroku_poll", ok=False, at=self.heroku.status.last_error_at)

    async def wait_connected(self, timeout: float = 10.0) -> None:
        """For tests and the CLI: wait until the Socket Mode connection is up."""
        socket = _started(self.socket, "the Socket Mode handler")
        supervisor = _started(self.supervisor, "the Socket Mode supervisor")
        deadline = time.monotonic() + timeout
        while not (supervisor.connected and await socket.client.is_connected()):
            if time.monotonic() > deadline:
                raise TimeoutError("Socket Mode did not connect")
            await asyncio.sleep(0.02)

    async def health_report(self) -> dict:
        """One entry per part this process runs. Each part is built on its own: a part whose report
        fails shows as that part `down` (logged once), never as another part's failure."""
        parts = self._health_parts
        components: dict[str, dict] = {"database": await parts.build("database", self._database_health)}
        components["socket_mode"] = await parts.build("socket_mode", self._socket_mode_health)
        if self.runs_bot:
            components["slack"] = self._slack_health()
        components["scheduler"] = await parts.build("scheduler", self._scheduler_health)
        if self.watcher is not None:
            components["heartbeat_watcher"] = await parts.build("heartbeat_watcher", self._watcher_health)
        if components["database"]["status"] == "up":  # the rest reads the database
            pool = _started(self.pool, "the database pool")
            sub_reports = {
                "ledger": lambda: self._counts(envelopes.status_counts(pool)),
                "slack_delivery": self._slack_delivery_health,
                "webhooks": self._webhook_health,
                "applications": lambda: self._counts(applications.count_by_state(pool)),
                "incidents": lambda: self._counts(incidents.count_by_status(pool)),
                "outbound": self._outbound_health,
                "heroku": self.heroku_health,
            }
            for name, report in sub_reports.items():
                components[name] = await parts.build(name, report)
            if self.config_sync is not None:
                components["config"] = await parts.build("config", self.config_sync.health)
        return {
            "version": __version__,
            "mode": self.mode,
            "uptime_seconds": round(time.time() - self.started_at, 1),
            "components": components,
        }

    async def _outbound_health(self) -> dict:
        """Pages beyond Slack (and Slack DMs): degraded while one failed in the last hour, saying
        where and why, so a broken SMTP password or a deleted webhook is seen before it matters."""
        report = await outbound.health(_started(self.pool, "the database pool"), since=datetime.now(timezone.utc) - OUTBOUND_FAILURES_SHOWN)
        failures = {f["channel"]: f["last_error"] for f in report.pop("failures")}
        part: dict = {"status": "degraded" if failures else "up", **report}
        if failures:
            part["failing"] = failures
        return part

    @staticmethod
    async def _counts(counts: Awaitable[dict[str, int]]) -> dict:
        return {"status": "up", **await counts}

    async def _database_health(self) -> dict:
        pool = _started(self.pool, "the database pool")
        started = time.perf_counter()
        await database.ping(pool)
        return {"status": "up", "latency_ms": round((time.perf_counter() - started) * 1000, 1)}

    async def _socket_mode_health(self) -> dict:
        if not self.runs_bot or self.socket is None or self.supervisor is None:
            return {"status": "disabled", "detail": "this process runs the sidecar only"}
        # check() reads the live connection and updates the supervisor's state and gauge, so
        # /health and /metrics never disagree.
        connected = await self.supervisor.check()
        part: dict = {"status": "up" if connected else "down"}
        if not connected and self.supervisor.down_since is not None:
            part["down_seconds"] = round(time.monotonic() - self.supervisor.down_since, 1)
        if self.sandbox is not None:
            part["sandbox"] = self.sandbox.base_url
        return part

    def _slack_health(self) -> dict:
        """Which Slack this bot talks to. The sandbox next to a real database is `misconfigured`:
        it works, but nobody in a real workspace hears anything, so /health must not look green."""
        if self.sandbox is None:
            return {"status": "up", "api_url": self.settings.slack_api_url}
        if self.settings.sandbox_on_real_database:
            return {"status": "misconfigured", "detail": SANDBOX_ON_REAL_DATABASE, "sandbox": self.sandbox.base_url}
        return {
            "status": "up",
            "detail": "sandbox: no Slack tokens; a local try-out with the embedded database",
            "sandbox": self.sandbox.base_url,
        }

    async def _scheduler_health(self) -> dict:
        jobs = self.scheduler.get_jobs() if self.scheduler.running else []
        part: dict = {
            "status": "up" if self.scheduler.running else "down",
            "jobs": sorted(job.id for job in jobs),
            "next_runs": {job.id: job.next_run_time.isoformat() for job in jobs if job.next_run_time},
            "last_runs": {job_id: run["at"] for job_id, run in sorted(self.job_runs.items())},
        }
        failing = {job_id: run["error"] for job_id, run in self.job_runs.items() if run["error"]}
        if failing:
            part["failing_jobs"] = failing
        return part

    async def _watcher_health(self) -> dict:
        watcher = _started(self.watcher, "the heartbeat watcher")
        return {
            "status": "up" if watcher.running else "down",
            "last_run": watcher.last_run.isoformat() if watcher.last_run else None,
            "missed_total": watcher.claimed_total,
        }

    async def _slack_delivery_health(self) -> dict:
        """Down while Slack refuses our token; degraded while a channel refuses us or the backlog waits."""
        pool = _started(self.pool, "the database pool")
        outbox = await notifications.status_counts(pool)
        backlog = await incidents.delivery_backlog(pool)
        last = max(
            (t for t in (await notifications.last_delivery(pool), await deliveries.last_success(pool)) if t),
            default=None,
        )
        part: dict = {
            "status": "up",
            "last_delivery": last.isoformat() if last else None,
            **outbox,
            "incident_messages_pending": backlog["pending"],
            "incident_messages_failed": backlog["failed"],
        }
        # Messages waiting for a channel that refuses Pulser (it posts them once it is invited).
        if held := await incidents.held_messages(pool, sorted(CHANNEL_ERRORS)):
            part["status"] = "degraded"
            part["held_for_channels"] = held
        events_backlog = await platform_events.delivery_backlog(pool)
        part["event_messages_pending"] = events_backlog["pending"]
        part["event_messages_failed"] = events_backlog["failed"]
        if self.delivery is not None:
            if self.delivery.auth_problem is not None:
                part["status"] = "down"
                part["error"] = self.delivery.auth_problem.error
                part["since"] = self.delivery.auth_problem.since.isoformat()
            elif self.delivery.channel_problems:
                part["status"] = "degraded"
            if self.delivery.channel_problems:
                part["channel_errors"] = {c: p.error for c, p in self.delivery.channel_problems.items()}
            if throttled := self.delivery.throttled_channels():
                part["throttled_channels"] = throttled
        return part

    async def _webhook_health(self) -> dict:
        """When each source last delivered; a source quiet for WEBHOOK_SILENCE_HOURS is "silent"."""
        pool = _started(self.pool, "the database pool")
        now = datetime.now(timezone.utc)
        limit = timedelta(hours=self.settings.webhook_silence_hours)
        sources: dict[str, dict] = {}
        for name, last in (await envelopes.last_received_by_source(pool, sorted(SOURCES))).items():
            configured = self.webhook_secrets().get(SOURCES[name].SECRET_ENV) is not None
            entry: dict = {"configured": configured, "last_received": last.isoformat() if last else None}
            if last is not None and now - last > limit:
                entry["silent"] = True
                entry["silent_for_seconds"] = round((now - last).total_seconds())
            sources[name] = entry
        silent = sorted(n for n, e in sources.items() if e.get("silent"))
        return {"status": "degraded" if silent else "up", "silent": silent, "sources": sources}

    async def heroku_health(self) -> dict:
        """Heroku monitoring: apps, last successful poll, last error, rate-limit remaining.
        `disabled` without an API key or apps; `degraded` while polls fail (Slack still works)."""
        heroku = _started(self.heroku, "Heroku monitoring")
        active, why = await heroku.activity()
        status = heroku.status
        settings = await heroku.settings()
        part: dict = {
            "status": "up" if active else "disabled",
            "apps": list(settings.apps),
            "interval_minutes": settings.interval_minutes,
            "channel": settings.channel,
            "last_poll": status.last_cycle_at.isoformat() if status.last_cycle_at else None,
            "last_successful_poll": status.last_success_at.isoformat() if status.last_success_at else None,
            "last_error": status.last_error,
            "rate_limit_remaining": heroku.client.budget.remaining,
            "requests_last_cycle": status.requests_last_cycle,
        }
        if why:
            part["detail"] = why
        if active and status.errors_by_app:
            part["status"] = "degraded"
            part["errors"] = dict(status.errors_by_app)
        if heroku.client.budget.remaining is not None:
            self.metrics.heroku_rate_limit.set(heroku.client.budget.remaining)
        return part

    async def status_report(self) -> dict:
        """`GET /api/status`: what Pulser watches and how it stands, for scripts and dashboards."""
        pool = _started(self.pool, "the database pool")
        return {
            "version": __version__,
            "mode": self.mode,
            "applications": await applications.count_by_state(pool),
            "incidents": await incidents.count_by_status(pool),
            "heroku": await self.heroku_health(),
            "webhooks": await self._webhook_health(),
        }

    async def delivery_report(self) -> dict:
        """`GET /api/delivery`: webhooks in, Slack out, and what is stuck in between."""
        pool = _started(self.pool, "the database pool")
        since = datetime.now(timezone.utc) - timedelta(hours=1)
        return {
            "webhooks": await self._webhook_health(),
            "slack": await self._slack_delivery_health(),
            "last_hour": await deliveries.summary_since(pool, since),
            "recent_failures": await deliveries.recent_failures(pool, limit=20),
        }

    async def stop(self) -> None:
        """Stop taking work, finish or release in-flight rows, close the socket, stop the database.

        Each step is bounded (`_bounded`): a part that does not stop in time is logged and left
        behind, so a stopping process never hangs on one of them."""
        if self.config_sync is not None:
            try:
                asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
            except (NotImplementedError, RuntimeError, ValueError):
                pass
            await _bounded("config_sync", self.config_sync.stop())
            self.config_sync = None
        if self.http_runner is not None:
            await _bounded("sidecar", self.http_runner.cleanup())
            self.http_runner = None
        if self.heartbeat_writer is not None:
            await _bounded("heartbeat_writer", self.heartbeat_writer.stop())  # commits what in-flight requests queued
            self.heartbeat_writer = None
        if self.ledger_worker is not None and self.pool is not None:
            await _bounded("ledger_worker", self._drain_ledger_worker(), timeout=self.drain_timeout + 5)
        if self.socket is not None:
            await _bounded("socket_drain", self._drain_socket(), timeout=self.drain_timeout + 5)
        for name in ("watcher", "incident_notifier", "event_notifier", "escalation", "dispatcher",
                     "home_refresher"):
            part = getattr(self, name)
            if part is not None:
                await _bounded(name, part.stop())
                setattr(self, name, None)
        if self._delivery_session is not None:
            await _bounded("delivery_session", self._delivery_session.close())
            self._delivery_session = None
        if self._beat_task is not None:
            self._beat_task.cancel()
            self._beat_task = None
            if self.pool is not None:  # claims are released or finished: nothing left to take over
                await _bounded("worker_forget", self._forget_worker())
        if self.supervisor is not None:
            await _bounded("supervisor", self.supervisor.stop())
        if self._connect_task is not None and not self._connect_task.done():
            self._connect_task.cancel()
        if self.socket is not None:
            await _bounded("socket_close", self.socket.close_async())
            self.socket = None
            self.metrics.socket_connected.set(0)
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
            self.metrics.scheduler_running.set(0)
        if self.self_ping is not None:
            await _bounded("self_ping", self.self_ping.close())
            self.self_ping = None
        if self.heroku is not None:
            await _bounded("heroku_client", self.heroku.client.close())
        if self.calendar_imports is not None:
            await _bounded("calendar_imports", self.calendar_imports.close())
            self.calendar_imports = None
        if self.deploys is not None:
            await _bounded("deploys", self.deploys.close())
        if self.pool is not None:
            # close() waits for every connection to be released; a job still inside a query
            # (the scheduler does not wait for running jobs) must not keep the process alive.
            if not await _bounded("database_pool", self.pool.close()):
                self.pool.terminate()
            self.pool = None
        if self.sandbox is not None:
            await _bounded("sandbox", self.sandbox.stop())
            self.sandbox = None
        if self.embedded is not None:
            await self.embedded.stop()
            self.embedded = None
        log.info("pulser.stopped", mode=self.mode)

    async def _beat(self) -> None:
        """Say this process is alive every few seconds; a database outage only delays it."""
        while True:
            await asyncio.sleep(workers.BEAT_EVERY.total_seconds())
            try:
                await workers.beat(self.pool, self.worker_name)
            except DATABASE_ERRORS as exc:
                log.warning("worker.beat_failed", error=f"{type(exc).__name__}: {exc}")

    async def _forget_worker(self) -> None:
        try:
            await workers.forget(self.pool, self.worker_name)
        except DATABASE_ERRORS as exc:
            log.warning("worker.forget_failed", error=f"{type(exc).__name__}: {exc}")

    async def _drain_ledger_worker(self) -> None:
        unfinished = await self.ledger_worker.drain(self.drain_timeout)
        if unfinished:
            released = await envelopes.release_claims(self.pool, self.worker_name, unfinished)
            log.warning("ledger.webhooks_released_at_shutdown", rows=released)

    async def _drain_socket(self) -> None:
        unfinished = await self.socket.drain(self.drain_timeout)
        if unfinished and self.pool is not None:
            released = await envelopes.release_claims(self.pool, self.worker_name, unfinished)
            log.warning("ledger.released_at_shutdown", rows=released)

async def _bounded(step: str, awaitable: Awaitable[object], timeout: float = 10.0) -> bool:
    """Await one shutdown step for at most `timeout` seconds; False (and a warning) if it did not
    finish, so one stuck part never keeps a stopping process alive. A slow one is logged too."""
    started = time.monotonic()
    try:
        await asyncio.wait_for(awaitable, timeout)
    except asyncio.TimeoutError:
        log.warning("shutdown.step_timed_out", step=step, seconds=timeout)
        return False
    if (took := time.monotonic() - started) > 2.0:
        log.warning("shutdown.step_slow", step=step, seconds=round(took, 1))
    return True
