"""The blocking client."""

from __future__ import annotations

import time
from collections.abc import Generator, Iterable, Mapping
from types import TracebackType
from typing import Any, Self, TypeVar, Unpack

import grpc

from . import _bulk, _calls
from ._bulk import BatchOutcome, EnforceOptions, EnforceRequest, enforce_call, enforce_request
from ._calls import CHANNEL_OPTIONS, DEFAULT_TIMEOUT, Call, Settings
from ._stream import EnforceStream
from ._types import (
    AgentStatusResult,
    ApprovalResult,
    AuthorizeResult,
    ContextItem,
    EnforceResult,
    TraceResult,
    UsageResult,
)
from ._v1 import policy_decision_service_pb2_grpc as pb_grpc
from ._watch import Watch, watch_sync

__all__ = ["Client"]

ResultT = TypeVar("ResultT")


class Client:
    """A blocking client of one pdp sidecar; safe to share between threads.

    ``target`` is ``"host:port"`` or ``"unix:/path/to/socket"`` (any gRPC
    target). Every call has a deadline: ``timeout`` seconds unless the call
    passes its own ``timeout=``.

    The client fails closed: when the sidecar cannot be reached, has no
    snapshot yet, or misses the deadline, calls raise
    ``SidecarUnavailableError``. With ``fail_open=True``, ``enforce_policy``
    alone returns an ``ALLOW`` result with ``fail_open=True`` instead (and logs
    a warning on the ``pdp_client`` logger); ``authorize``, ``agent_status``
    and ``report_usage`` still raise. ``fail_open`` never turns an answer of
    the sidecar (a block, a paused agent, a refused request) into an allow.

    ``caller_token`` (default: ``$PDP_CALLER_TOKEN``) is the agent's caller
    token, sent with every call (``x-pdp-caller-token`` metadata) for a
    sidecar run with ``--require-caller-token``; one that cannot act as the
    agent a call names raises ``CallerRefusedError``. ``tls=True`` (implied
    by ``ca_file``) connects over TLS, verified against ``ca_file`` (PEM;
    default: the system's CAs); ``cert_file`` and ``key_file`` are the
    client certificate a sidecar with ``--client-ca`` requires (mutual TLS).

    One channel is opened for the client's lifetime; ``close()`` it, or use
    the client as a context manager.
    """

    def __init__(
        self,
        target: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        fail_open: bool = False,
        caller_token: str | None = None,
        tls: bool = False,
        ca_file: str | None = None,
        cert_file: str | None = None,
        key_file: str | None = None,
    ) -> None:
        self._settings = Settings.checked(
            target,
            timeout,
            fail_open,
            caller_token=caller_token,
            tls=tls,
            ca_file=ca_file,
            cert_file=cert_file,
            key_file=key_file,
        )
        credentials = self._settings.credentials
        if credentials is None:
            self._channel = grpc.insecure_channel(target, options=CHANNEL_OPTIONS)
        else:
            self._channel = grpc.secure_channel(target, credentials, options=CHANNEL_OPTIONS)
        self._stub = pb_grpc.PolicyDecisionServiceStub(self._channel)
        self._closed = False

    @property
    def target(self) -> str:
        return self._settings.target

    @property
    def timeout(self) -> float:
        return self._settings.timeout

    @property
    def fail_open(self) -> bool:
        return self._settings.fail_open

    def __repr__(self) -> str:
        return f"Client({self.target!r}, timeout={self.timeout}, fail_open={self.fail_open})"

    def enforce_policy(
        self,
        agent_id: str,
        input: str | None = None,
        *,
        wait_for_approval: float | None = None,
        timeout: float | None = None,
        **options: Unpack[EnforceOptions],
    ) -> EnforceResult:
        """Asks whether ``agent_id`` may make a call, before it makes it.

        ``input`` is the text about to be sent to the model or tool;
        ``output`` the model's answer to scan (and mask, where a policy says
        so): pass ``output`` alone to scan an answer without gating a call.
        ``context`` is content the agent pulled in for the call (retrieved
        documents, tool results, emails, web pages, code), each a
        ``ContextItem``; ``injection_scan`` policies scan it for instructions
        hidden in it.

        Returns the decision when the call may proceed (``ALLOW``,
        ``ALLOW_WITH_WARNINGS``) or must wait for a reviewer
        (``PENDING_APPROVAL``, see ``approval_id``).

        With ``wait_for_approval=S`` a ``PENDING_APPROVAL`` decision is
        waited on for up to ``S`` seconds: when a reviewer approves, the same
        request is sent again with the approval id and that decision is
        returned (the approval lets this one call through); a denial or an
        expiry raises ``PolicyBlockedError`` (``.approval``, ``.reviewer``,
        ``.comment``); still pending after ``S`` seconds, the
        ``PENDING_APPROVAL`` result is returned, and the agent may come back
        later with ``approval_id=`` (the same request, the approval's id).

        Raises ``PolicyBlockedError`` when a block-mode policy fired,
        ``AgentPausedError`` when the agent is paused,
        ``SidecarUnavailableError`` when no decision could be had (unless
        the client fails open), and ``InvalidRequestError`` (``.field``
        names the argument) when the sidecar refused the request or, before
        anything is sent (``.code`` None), for an empty ``agent_id`` or a
        negative or non-finite ``estimated_cost_usd``.
        """
        if wait_for_approval is None:  # sent once: no request value to keep
            return self._send(enforce_call(agent_id, input, options), timeout)
        request = enforce_request(agent_id, input, options)
        waiting = _calls.ApprovalWait(wait_for_approval)
        result = self._send(request.call(), timeout)
        while (seconds := waiting.next_wait(result)) is not None:
            assert result.approval_id is not None
            started = time.monotonic()
            answer = self.await_approval(result.approval_id, wait=seconds, timeout=timeout)
            if waiting.approved(result, answer, time.monotonic() - started):
                result = self._send(request.with_approval(result.approval_id).call(), timeout)
            else:
                time.sleep(waiting.pause())
        return result

    def await_approval(
        self, approval_id: str, *, wait: float = 30.0, timeout: float | None = None
    ) -> ApprovalResult:
        """Waits (at most ``wait`` seconds, a minute at most; 0 answers at
        once) for a reviewer to decide the approval a ``PENDING_APPROVAL``
        decision named, and returns it as it stands then: ``state`` is
        ``approved``, ``denied``, ``expired`` or, when the wait ran out,
        ``pending`` (call again to keep waiting). The call's deadline is
        ``wait`` plus the client's (or this call's) ``timeout``.

        Raises ``InvalidRequestError`` (``field`` ``approval_id``) for an id
        the sidecar never issued, and fails closed like every call."""
        return self._send(_calls.await_approval(approval_id, wait), timeout)

    def authorize(
        self,
        source_agent_id: str,
        target_agent_id: str,
        action: str,
        *,
        timeout: float | None = None,
    ) -> AuthorizeResult:
        """Asks whether one agent may perform ``action`` on another now.

        ``action`` is one of execute, read, write, delete, invoke, query,
        subscribe, delegate (any case); another value raises
        ``InvalidRequestError``.
        A denial is a result (``allowed`` False, ``denial`` says why), not an
        error. Always fails closed.
        """
        return self._send(_calls.authorize(source_agent_id, target_agent_id, action), timeout)

    def enforce_batch(
        self,
        requests: Iterable[EnforceRequest | Mapping[str, Any]],
        *,
        timeout: float | None = None,
    ) -> list[BatchOutcome]:
        """Decides many requests in one call (a plan of tool calls, a batch
        of documents): one ``BatchOutcome`` per request, in order, each what
        ``enforce_policy`` would give for it (``outcome.unwrap()`` returns
        the result or raises its error). Budgets see the requests in order.

        A request the client or the sidecar refuses raises
        ``InvalidRequestError`` for the whole batch, naming it
        (``requests[2].agent_id``); nothing is decided then. When no answer
        comes at all, the batch raises ``SidecarUnavailableError``, or, with
        ``fail_open=True``, every outcome is a fail-open ``ALLOW``.
        """
        return self._send(_bulk.enforce_batch(requests), timeout)

    def enforce_stream(self) -> EnforceStream:
        """Opens one long-lived stream for many ``enforce_policy`` calls
        (``stream.enforce_policy(...)``, same arguments, results and errors),
        cheaper per call than unary calls for a busy agent."""
        if self._closed:
            raise RuntimeError("the client is closed")
        return EnforceStream(self._stub, self._settings)

    def agent_status(self, agent_id: str, *, timeout: float | None = None) -> AgentStatusResult:
        """The agent's kill-switch state, its spend against its budgets and
        the sidecar's active snapshot."""
        return self._send(_calls.agent_status(agent_id), timeout)

    def watch_agent_status(
        self, agent_id: str, *, timeout: float | None = None
    ) -> Generator[AgentStatusResult, None, None]:
        """The agent's state (as ``agent_status`` gives it) once at once,
        then again on every change: a pause, a resume, a new snapshot::

            for status in pdp.watch_agent_status("my-chatbot"):
                if status.paused:
                    ...

        A generator: leaving the loop (``break``, an exception) or closing it
        cancels the call. The watch has no deadline unless ``timeout`` is
        given (seconds for the whole watch, then ``DeadlineExceededError``);
        the first state must come within the client's timeout, so a wedged
        sidecar raises instead of hanging. Fails closed: an unreachable
        sidecar, or one that ends the watch (a restart), raises
        ``SidecarUnavailableError``; watch again to go on. An empty or
        malformed ``agent_id`` raises ``InvalidRequestError`` at once."""
        if self._closed:
            raise RuntimeError("the client is closed")
        watch = Watch(_calls.watch_agent_status(agent_id), self._settings, timeout)
        return watch_sync(
            watch,
            lambda: self._stub.WatchAgentStatus(
                watch.call.request,
                timeout=watch.seconds,
                metadata=self._settings.metadata,
                wait_for_ready=False,
            ),
        )

    def report_usage(
        self,
        agent_id: str,
        cost_usd: float,
        request_id: str,
        *,
        timeout: float | None = None,
    ) -> UsageResult:
        """Records what a call actually cost, for the agent's budgets.

        Idempotent by ``request_id``: reporting the same id again adds
        nothing and returns ``duplicate=True``, so a report can be retried.
        ``cost_usd`` must be finite and not negative.
        """
        return self._send(_calls.report_usage(agent_id, cost_usd, request_id), timeout)

    def submit_trace(
        self,
        agent_id: str,
        *,
        request_id: str | None = None,
        input: str | None = None,
        output: str | None = None,
        cost_usd: float = 0.0,
        model: str | None = None,
        tool: str | None = None,
        metadata: Mapping[str, str] | None = None,
        context: Iterable[ContextItem] | None = None,
        timeout: float | None = None,
    ) -> TraceResult:
        """Records a finished call: the sidecar evaluates it after the fact
        (nothing is blocked, the call ran), each policy that fires becomes an
        incident, and ``cost_usd`` counts as the agent's spend. Pass the
        call's ``request_id`` (the one given to ``enforce_policy``): the same
        id again adds nothing. Raises ``AgentPausedError`` for a paused
        agent and ``InvalidRequestError`` naming a bad field.
        """
        call = _calls.submit_trace(
            agent_id,
            request_id=request_id,
            input=input,
            output=output,
            cost_usd=cost_usd,
            model=model,
            tool=tool,
            metadata=metadata,
            context=context,
        )
        return self._send(call, timeout)

    def _send(self, call: Call[ResultT], timeout: float | None) -> ResultT:
        if self._closed:
            raise RuntimeError("the client is closed")
        seconds = self._settings.deadline(timeout, call.holds)
        method = getattr(self._stub, call.method)
        try:
            # wait_for_ready=False: an unreachable sidecar fails the call at
            # once instead of holding it until the deadline.
            response = method(
                call.request,
                timeout=seconds,
                metadata=self._settings.metadata,
                wait_for_ready=False,
            )
        except grpc.RpcError as error:
            return call.failed(error, self._settings, seconds)
        return call.to_result(response)

    def close(self) -> None:
        """Closes the channel; calls in flight are cancelled. Idempotent."""
        if not self._closed:
            self._closed = True
            self._channel.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
