"""The sidecar: state, snapshot source, gRPC server, health, and a graceful
shutdown. The process around it (signals, the event loop) is ``pdp serve``'s."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urljoin

import grpc
from grpc_health.v1 import _async as health_aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from pdp.engine import Clock, ListenAddress, SteadyClock, parse_listen_address
from pdp.observe import MetricsServer, new_registry
from pdp.outbound import OutboundPolicy
from pdp.snapshot import (
    Active,
    HttpSource,
    SnapshotHolder,
    SnapshotSource,
    Unreachable,
    Update,
    open_source,
)
from pdp.state import (
    DEFAULT_DECISION_LOG_MAX_ROWS,
    DEFAULT_DECISION_LOG_RETENTION,
    DEFAULT_RESERVATION_TTL,
    DEFAULT_RETENTION,
    ApprovalStore,
    Database,
    DecisionLog,
    Outbox,
    Pruner,
    RedisLocation,
    RedisUsage,
    SnapshotStore,
    SqliteUsage,
    StateError,
    StateFileLock,
    StateStatus,
    TraceLog,
    UsageBackend,
    lock_state_file,
    parse_state_location,
    set_approvals_authority,
    sidecar_id,
    sidecar_rules,
)
from pdp.v1 import policy_decision_service_pb2 as pb

from ._approvals import ApprovalDesk
from ._approvals_remote import RemoteApprovals
from ._callers import CallerCheck
from ._cel_pool import DEFAULT_CEL_TIME_LIMIT, DEFAULT_CEL_WORKERS, CelPool
from ._listen import restrict_socket, server_credentials, socket_gid, socket_umask
from ._metrics import SidecarMetrics
from ._observers import AfterDecision
from ._servicer import SERVICE_NAME, Activity, PolicyDecisionServicer
from ._shadow import ShadowEvaluator
from ._traces import TraceDesk
from ._tracing import DecisionTracer
from ._translate import Limits
from ._uplink import Uplink
from ._validators import ValidatorCaller

__all__ = ["LIVENESS_SERVICE", "STATE_HEALTH_SERVICE", "ServeOptions", "Sidecar"]

log = logging.getLogger("pdp.server")

_MESSAGE_SLACK = 64 * 1024  # room for the other fields next to a maximal input
# The health service that says whether the state backend answers (the
# sidecar as a whole keeps serving: policies that read usage fail closed).
STATE_HEALTH_SERVICE = "pdp.v1.StateBackend"
# Liveness: SERVING from start to shutdown, whatever the snapshot's state,
# answered by the event loop that serves decisions (a loop that is stuck
# does not answer). Readiness is the overall service ("") and the decision
# service, NOT_SERVING with no snapshot or a stale one: a liveness probe on
# it would restart a sidecar that waits for its control plane.
LIVENESS_SERVICE = "pdp.v1.Liveness"


@dataclass(frozen=True, slots=True)
class ServeOptions:
    snapshot: str
    # None: no gRPC server (the engine runs in the caller's process).
    listen: str | None = "127.0.0.1:50051"
    # A SQLite file, or redis://HOST:PORT/DB (rediss:// for TLS).
    state: str = "pdp-state.db"
    # With Redis state: the SQLite file of the decision log and the last
    # good snapshot, the Redis password and the CA of rediss://.
    local_state: str = "pdp-state.db"
    state_password: str | None = None
    state_ca_file: str | None = None
    max_input_bytes: int = 1024 * 1024
    poll_interval: float = 0.2
    shutdown_grace: float = 10.0
    api_key: str | None = None
    # A file holding the API key, read again when the control plane refuses
    # the key (a rotated Secret); takes the place of api_key.
    api_key_file: str | None = None
    # CAs that verify an https control plane (default: the system's).
    ca_file: str | None = None
    # How the sidecar names itself to a control plane (default HOST/PID).
    sidecar_name: str | None = None
    max_staleness: float | None = None
    # Custom validators may use plain http to a loopback address (development).
    allow_insecure_validators: bool = False
    # Seconds an unreported reservation is held before it is settled at its
    # estimate.
    reservation_ttl: float = DEFAULT_RESERVATION_TTL
    # Retention of the state database (seconds), and how often it is pruned.
    retention: float = DEFAULT_RETENTION.total_seconds()
    decision_log_retention: float = DEFAULT_DECISION_LOG_RETENTION.total_seconds()
    decision_log_max_rows: int = DEFAULT_DECISION_LOG_MAX_ROWS
    prune_interval: float = 60.0
    # Several workers listen on one port (SO_REUSEPORT); one of them prunes.
    reuse_port: bool = False
    prune: bool = True
    # Take the lock of the (local) SQLite state file; False only for the
    # workers of `pdp serve --workers`, whose supervisor holds it.
    lock_state: bool = True
    # host:port of a Prometheus /metrics endpoint; None: no metrics.
    metrics_listen: str | None = None
    # A candidate snapshot (file or URL) to shadow; None: the control plane's
    # candidate when --snapshot is its URL; "off": none.
    shadow_snapshot: str | None = None
    shadow_queue: int = 10_000
    otel_traces: bool = False
    # Worker processes for CEL evaluations too costly to make on the event
    # loop, and the wall-clock limit of one such evaluation (seconds).
    cel_workers: int = DEFAULT_CEL_WORKERS
    cel_time_limit: float = DEFAULT_CEL_TIME_LIMIT
    # Callers must present their agent's caller token (x-pdp-caller-token).
    require_caller_token: bool = False
    # TLS for a TCP listener (PEM files); with client_ca, client certificates
    # signed by it are required (mutual TLS).
    tls_cert: str | None = None
    tls_key: str | None = None
    client_ca: str | None = None
    # Permission bits of a unix: socket (e.g. 0o600: the sidecar's user only),
    # and the group it is given (a name or a number; 0o660 admits it).
    socket_mode: int | None = None
    socket_group: str | None = None
    # Where custom validator calls may go (--outbound-allow).
    outbound: OutboundPolicy = field(default_factory=OutboundPolicy)


def shadow_location(options: ServeOptions) -> str | None:
    """Where the candidate snapshot to shadow comes from, if anywhere."""
    if options.shadow_snapshot == "off":
        return None
    if options.shadow_snapshot is not None:
        return options.shadow_snapshot
    if options.snapshot.startswith(("http://", "https://")):
        candidates = []
        for each in options.snapshot.split(","):  # one per control plane replica
            url, sep, query = each.strip().partition("?")
            candidates.append(f"{url.rstrip('/')}/candidate{sep}{query}")
        return ",".join(candidates)
    return None


class Sidecar:
    """One running sidecar. ``start`` returns once it listens (serving, or
    NOT_SERVING until a snapshot is active); ``stop`` finishes in-flight calls.

    ``clock`` is the wall clock and the monotonic clock the sidecar reads
    (the machine's by default); calendar time never steps back and
    durations are measured on the monotonic clock (see SteadyClock)."""

    def __init__(
        self,
        options: ServeOptions,
        *,
        clock: Clock | None = None,
        tracer_provider: object = None,
    ) -> None:
        """``tracer_provider``: an OpenTelemetry provider for the decision
        spans (default: one exporting over OTLP, see ``DecisionTracer``)."""
        self.options = options
        self.address = ""
        self.holder: SnapshotHolder
        self.clock = SteadyClock(clock)
        self._db: Database | None = None
        self._state_lock: StateFileLock | None = None
        self._decisions: DecisionLog | None = None
        self._usage: UsageBackend | None = None
        self.pruner: Pruner | None = None
        self._server: grpc.aio.Server | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._unpersisted: tuple[Active, bytes] | None = None
        self._persisting: asyncio.Future[None] | None = None
        self._servicer: PolicyDecisionServicer | None = None
        self._source: SnapshotSource | None = None
        self.uplink: Uplink | None = None
        self.approvals: ApprovalStore | None = None
        self._health = health_aio.HealthServicer()
        self.validators = ValidatorCaller(clock=self.clock, outbound=options.outbound)
        self.cel = CelPool(self.options.cel_workers, self.options.cel_time_limit)
        self._tracer_provider = tracer_provider
        self.shadow: ShadowEvaluator | None = None
        self.metrics_url = ""
        self._shadow_source: SnapshotSource | None = None
        self._metrics_server: MetricsServer | None = None
        self._tracer: DecisionTracer | None = None

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            await self.stop(grace=0)  # release the database and its thread
            raise

    async def _start(self) -> None:
        opts = self.options
        listen: ListenAddress | None = None
        try:
            if opts.listen is not None:
                listen = parse_listen_address(opts.listen)
        except ValueError as exc:  # the CLI checks first; ServeOptions built in code may not
            raise OSError(f"cannot listen on {opts.listen!r}: {exc}") from None
        try:
            location = parse_state_location(opts.state)
        except ValueError as exc:
            raise StateError(f"--state: {exc}") from None
        shared = isinstance(location, RedisLocation)
        database = opts.local_state if shared else str(location)
        if opts.lock_state:
            self._state_lock = lock_state_file(database)
        db = self._db = await Database.open(database)
        store = SnapshotStore(db)
        retention = timedelta(seconds=opts.retention)
        usage: UsageBackend
        if isinstance(location, RedisLocation):
            usage = await RedisUsage.open(
                location,
                password=opts.state_password,
                ca_file=opts.state_ca_file,
                clock=self.clock,
                reservation_ttl=opts.reservation_ttl,
                retention=retention,
                on_status=self._state_changed,
            )
        else:
            usage = await SqliteUsage.open(
                db, clock=self.clock, reservation_ttl=opts.reservation_ttl, retention=retention
            )
        self._usage = usage
        usage.start()
        counts = usage.decision_counts.count if isinstance(usage, RedisUsage) else None
        decisions = self._decisions = DecisionLog(db, also=counts)
        await decisions.start()
        if opts.prune:
            rules = sidecar_rules(
                self.clock,
                retention=retention,
                decision_log_retention=timedelta(seconds=opts.decision_log_retention),
                decision_log_max_rows=opts.decision_log_max_rows,
                usage=not shared,
            )
            self.pruner = Pruner(db, rules, interval=opts.prune_interval)
            self.pruner.start()

        async def activated(active: Active, data: bytes) -> None:
            await self.validators.prepare(active.snapshot.validators)
            self._persist_later(store, active, data)

        self.holder = SnapshotHolder(
            on_activate=activated,
            on_serving=self._set_serving,
            clock=self.clock,
            max_staleness=opts.max_staleness,
            allow_insecure_validators=opts.allow_insecure_validators,
        )
        source = self._source = open_source(
            opts.snapshot,
            api_key=opts.api_key,
            api_key_file=opts.api_key_file,
            ca_file=opts.ca_file,
            name=opts.sidecar_name or f"{socket.gethostname()}/{os.getpid()}",
            applied=self._applied,
            poll_interval=opts.poll_interval,
            max_staleness=opts.max_staleness,
        )
        if isinstance(source, HttpSource):
            # Following a control plane: tell it what it must know, and let
            # it decide approvals. A standalone sidecar (a snapshot file)
            # ships nothing and keeps its approvals itself.
            self.uplink = Uplink(
                lambda: source.url,
                lambda: source.api_key,
                Outbox(db),
                await sidecar_id(db),
                verify=source.verify,
                on_refused=source.reread_api_key,
            )
        uplink = self.uplink
        # The authority is the control plane (its first replica's URL names
        # it), whichever replica answers.
        await set_approvals_authority(
            db, None if not isinstance(source, HttpSource) else urljoin(source.urls[0], ".")
        )
        approvals = self.approvals = ApprovalStore(
            db, on_written=None if uplink is None else uplink.wake, clock=self.clock
        )
        await approvals.start()
        desk = ApprovalDesk(
            approvals,
            usage,
            remote=None if uplink is None else RemoteApprovals(uplink),
            clock=self.clock,
        )
        traces = TraceDesk(
            usage,
            TraceLog(db),
            self.clock,
            ships=uplink is not None,
            on_written=None if uplink is None else uplink.wake,
        )
        await self.holder.report(await _first_fetch(source))
        if not self.holder.ready:
            await self._restore_last_good(store)

        limit = opts.max_input_bytes
        after = self._observers(usage, decisions)
        servicer = self._servicer = PolicyDecisionServicer(
            self.holder,
            usage,
            decisions,
            Limits(limit),
            self.validators,
            clock=self.clock,
            state_status=usage.status,
            after=after,
            uplink=self.uplink,
            approvals=desk,
            traces=traces,
            cel=self.cel,
            callers=CallerCheck(opts.require_caller_token),
        )
        if listen is not None:
            await self._serve_grpc(servicer, listen)
        await self._health.set(LIVENESS_SERVICE, health_pb2.HealthCheckResponse.SERVING)
        await self._state_changed(usage.status())
        await self.holder.refresh()
        if self.uplink is not None:
            self.uplink.start()
        self._tasks.append(
            asyncio.create_task(source.run(self.holder.report), name="snapshot-source")
        )
        self._tasks.append(
            asyncio.create_task(self.holder.watch_staleness(), name="snapshot-staleness")
        )
        self._tasks.append(asyncio.create_task(desk.run(), name="approvals"))
        self._tasks.append(asyncio.create_task(self._warm_cel(), name="cel-workers"))
        if self.shadow is not None and self._shadow_source is not None:
            follow = self._shadow_source.run(self.shadow.report)
            self._tasks.append(asyncio.create_task(follow, name="shadow-source"))
            self._tasks.append(asyncio.create_task(self.shadow.run(), name="shadow"))
        if listen is not None:
            log.info("listening on %s", self.address)
        if self._metrics_server is not None:
            await self._metrics_server.start()
            self.metrics_url = self._metrics_server.url
            log.info("serving metrics at %s", self.metrics_url)
        if self.shadow is not None and self._shadow_source is not None:
            log.info("shadowing the candidate snapshot at %s", self._shadow_source.name)

    async def _warm_cel(self) -> None:
        """Starts the CEL workers once a snapshot has costly expressions."""
        while True:
            active = self.holder.active
            if active is not None and active.snapshot.offloads:
                self.cel.warm()
            await self.holder.wait_changed()

    def _observers(self, usage: UsageBackend, decisions: DecisionLog) -> AfterDecision:
        """What runs after each decision: shadow, metrics, spans, as asked."""
        opts = self.options
        location = shadow_location(opts)
        if location is not None:
            self.shadow = ShadowEvaluator(
                usage,
                capacity=opts.shadow_queue,
                clock=self.clock,
                allow_insecure_validators=opts.allow_insecure_validators,
                cel=self.cel,
            )
            # No name: only the main feed reports the revisions applied.
            self._shadow_source = open_source(
                location,
                api_key=opts.api_key,
                api_key_file=opts.api_key_file,
                ca_file=opts.ca_file,
                poll_interval=opts.poll_interval,
                optional=True,
            )
        metrics = None
        if opts.metrics_listen is not None:
            listen = parse_listen_address(opts.metrics_listen, unix=False)
            metrics = SidecarMetrics(
                self.holder,
                usage,
                decisions,
                self.clock,
                shadow=self.shadow,
                validators=self.validators,
                uplink=self.uplink,
                approvals=self.approvals,
            )
            registry = new_registry()
            registry.register(metrics)
            self._metrics_server = MetricsServer(registry, listen.host, listen.port)
        if opts.otel_traces:
            self._tracer = DecisionTracer(self._tracer_provider)
        return AfterDecision(metrics=metrics, shadow=self.shadow, tracer=self._tracer)

    def state_status(self) -> StateStatus:
        """The state backend's health, as AgentStatus shows it."""
        if self._usage is None:
            return StateStatus("", False, "not started")
        return self._usage.status()

    async def settle_expired(self) -> None:
        """Settles, at their estimate, the reservations that expired now
        (the state backend does it in the background too)."""
        if self._usage is not None:
            await self._usage.settle_expired()

    async def flush_state(self) -> None:
        """Writes what the decision log and the state backend hold in
        memory (they do it in the background within 50 ms too)."""
        if self._decisions is not None:
            await self._decisions.flush()
        if self._usage is not None:
            await self._usage.settle_expired()
        if isinstance(self._usage, RedisUsage):
            await self._usage.decision_counts.flush()

    def _persist_later(self, store: SnapshotStore, active: Active, data: bytes) -> None:
        """Persists the active document off the activation path: writing a
        large one takes a while, and the next activation (a pause) must not
        wait behind it. Only the latest document waiting is written."""
        self._unpersisted = (active, data)
        if self._persisting is None or self._persisting.done():
            self._persisting = asyncio.ensure_future(self._persist(store))

    async def _persist(self, store: SnapshotStore) -> None:
        while self._unpersisted is not None:
            active, data = self._unpersisted
            self._unpersisted = None
            try:
                await store.save(
                    data.decode(), active.snapshot.revision, active.source, active.activated_at
                )
            except Exception:  # persisting is best effort; serving goes on
                log.exception("could not persist the active snapshot")

    def _applied(self) -> tuple[int, int] | None:
        """The revisions this sidecar has applied, as it reports them to a
        control plane: its whole snapshot's, and its pause state's."""
        active = self.holder.active
        return None if active is None else (active.snapshot.revision, active.pause_revision)

    async def _restore_last_good(self, store: SnapshotStore) -> None:
        stored = await store.load()
        if stored is None:
            log.warning("no snapshot active yet; health is NOT_SERVING until one loads")
            return
        source = f"{stored.source} (last good, persisted)"
        await self.holder.restore(stored.document.encode(), source)

    async def _state_changed(self, status: StateStatus) -> None:
        serving = (
            health_pb2.HealthCheckResponse.SERVING
            if status.healthy
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        await self._health.set(STATE_HEALTH_SERVICE, serving)

    async def _set_serving(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        await self._health.set("", status)
        await self._health.set(SERVICE_NAME, status)

    async def _serve_grpc(self, servicer: PolicyDecisionServicer, listen: ListenAddress) -> None:
        opts = self.options
        limit = opts.max_input_bytes
        server = self._server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", 2 * limit + _MESSAGE_SLACK),
                ("grpc.so_reuseport", 1 if opts.reuse_port else 0),
            ]
        )
        server.add_generic_rpc_handlers((servicer.handler(),))
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        reflection.enable_server_reflection(
            (
                pb.DESCRIPTOR.services_by_name["PolicyDecisionService"].full_name,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ),
            server,
        )
        credentials = server_credentials(opts.tls_cert, opts.tls_key, opts.client_ca)
        socket_mode = opts.socket_mode if listen.is_unix else None
        gid = None
        if listen.is_unix and opts.socket_group is not None:
            gid = socket_gid(opts.socket_group)
            socket_mode = 0o660 if socket_mode is None else socket_mode
        try:
            # The socket file is made when the port is added: made with
            # socket_mode's bits, never wider for a moment.
            with socket_umask(socket_mode):
                if credentials is None:
                    port = server.add_insecure_port(str(listen))
                else:
                    port = server.add_secure_port(str(listen), credentials)
        except RuntimeError as exc:  # grpc reports a failed bind this way
            raise OSError(f"cannot listen on {listen}: {exc}") from None
        if port == 0 and not listen.is_unix:
            raise OSError(f"cannot listen on {listen}")
        self.address = str(listen if listen.is_unix else listen.with_port(port))
        await server.start()
        if socket_mode is not None:
            restrict_socket(listen.path, socket_mode, gid)

    @property
    def servicer(self) -> PolicyDecisionServicer:
        """The request handlers, for running the sidecar in-process
        (``pdp.embedded``); set once started."""
        if self._servicer is None:
            raise RuntimeError("the sidecar is not started")
        return self._servicer

    async def stop(self, grace: float | None = None) -> None:
        """Reports NOT_SERVING, serves until calls stop arriving (at most
        ``grace`` seconds), then stops the server and flushes state."""
        grace = self.options.shutdown_grace if grace is None else grace
        deadline = time.monotonic() + grace
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._persisting is not None:
            await self._persisting  # the last good snapshot, before the database closes
        if self._source is not None:
            await self._source.aclose()
        if self._shadow_source is not None:
            await self._shadow_source.aclose()
        if self._metrics_server is not None:
            await self._metrics_server.stop()
        if self._server is not None:
            await self._health.enter_graceful_shutdown()
            if self._servicer is not None:
                await _wait_quiet(self._servicer.activity, deadline)
                self._servicer.end_streams()
            await self._server.stop(max(0.0, deadline - time.monotonic()))
        await self.validators.aclose()
        await self.cel.aclose()
        # State that cannot be written now (a full or read-only disk) is
        # lost with the process; the rest still closes, within the grace.
        if self.pruner is not None:
            await _closing("the pruner", self.pruner.stop())
        if self.approvals is not None:
            await _closing("the approvals", self.approvals.close())
        if self.uplink is not None:
            await self.uplink.stop()
        if self._decisions is not None:
            await _closing("the decision log", self._decisions.close())
        if self._usage is not None:
            await _closing("usage", self._usage.close())
        try:
            if self._db is not None:
                await _closing("the state database", self._db.close())
        finally:
            if self._state_lock is not None:
                self._state_lock.release()
                self._state_lock = None
        if self._tracer is not None:
            await asyncio.to_thread(self._tracer.shutdown)


async def _closing(what: str, closed: Awaitable[None]) -> None:
    try:
        await closed
    except StateError as exc:
        log.error("%s could not be written at shutdown: %s", what, exc)


_FIRST_FETCH_TIMEOUT = 5.0  # then serve the persisted last good snapshot meanwhile


async def _first_fetch(source: SnapshotSource) -> Update:
    try:
        return await asyncio.wait_for(source.fetch(), _FIRST_FETCH_TIMEOUT)
    except TimeoutError:
        return Unreachable(source.name, f"no answer within {_FIRST_FETCH_TIMEOUT:g}s")


_QUIET = 0.1  # no call started for this long: what was queued has been served


async def _wait_quiet(activity: Activity, deadline: float) -> None:
    # Polled: quiet means nothing happened for a while, which no event signals.
    while time.monotonic() < deadline and activity.quiet_for() < _QUIET:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
