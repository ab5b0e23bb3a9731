"""Decisions in bulk: EnforceBatch and EnforceStream against unary Enforce,
on one sidecar, at the same concurrency, in one run.

    .venv/bin/python bench/bench_bulk.py     # --seconds S --concurrency C --batch N

Each mode runs C callers for S seconds: unary (one Enforce per call), batch
(EnforceBatch of N requests per call), stream (one EnforceStream per
caller, up to 8 requests in flight on it, one request per message, as a
client that does not pack sends them), packed (the same, but each message
carries every request waiting to be sent, as the Python client does) and
client (``pdp_client``'s ``AsyncEnforceStream``, 8 tasks per caller sharing
it). Every request
is the same 1 KB of benign text for ``my-chatbot`` on the example snapshot.
The figure that matters is decisions per second of the sidecar's own CPU
(its user + system time, read from /proc): what one core of the sidecar
decides, whatever the load generator costs. Rounds alternate the modes'
order; the headline is the median per-round ratio to unary.
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
import grpc.aio

if str(Path(__file__).resolve().parent.parent) not in sys.path:  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pdp_client import AsyncClient

from bench._common import REPO, cpu_seconds, describe_machine, text_of
from pdp.v1 import policy_decision_service_pb2 as pb
from tests._process import PdpProcess

METHOD = "/pdp.v1.PolicyDecisionService/"
MODES = ("unary", "batch", "stream", "packed", "client")
WINDOW = 8  # stream requests in flight per caller


@dataclass(frozen=True, slots=True)
class Run:
    decisions: int
    seconds: float  # wall clock
    cpu: float  # the sidecar's CPU seconds

    @property
    def per_cpu_second(self) -> float:
        return self.decisions / self.cpu if self.cpu > 0 else 0.0

    @property
    def per_second(self) -> float:
        return self.decisions / self.seconds


def _identity(data: bytes) -> bytes:
    return data


async def sdk_stream(target: str, until: float) -> int:
    """Decisions made through one ``AsyncEnforceStream`` by WINDOW tasks."""
    text = text_of(1024)
    async with AsyncClient(target, timeout=10.0) as client, client.enforce_stream() as stream:

        async def task() -> int:
            done = 0
            while time.monotonic() < until:
                await stream.enforce_policy("my-chatbot", text)
                done += 1
            return done

        return sum(await asyncio.gather(*(task() for _ in range(WINDOW))))


async def drive(
    channel: grpc.aio.Channel,
    target: str,
    mode: str,
    concurrency: int,
    batch: int,
    seconds: float,
) -> int:
    """Decisions made by ``concurrency`` callers in ``seconds``."""
    one = pb.EnforceRequest(agent_id="my-chatbot", input=text_of(1024))
    unary = channel.unary_unary(METHOD + "Enforce", _identity, _identity)
    many = channel.unary_unary(METHOD + "EnforceBatch", _identity, _identity)
    stream = channel.stream_stream(METHOD + "EnforceStream", _identity, _identity)
    single = one.SerializeToString()
    several = pb.EnforceBatchRequest(requests=[one] * batch).SerializeToString()
    message = pb.EnforceStreamRequest(id="x", request=one).SerializeToString()
    item = pb.EnforceStreamItem(id="x", request=one)
    packs = {
        n: pb.EnforceStreamRequest(items=[item] * n).SerializeToString()
        for n in range(2, WINDOW + 1)
    }
    channel_target = target
    until = time.monotonic() + seconds

    async def caller() -> int:
        done = 0
        if mode == "unary":
            while time.monotonic() < until:
                await unary(single)
                done += 1
        elif mode == "batch":
            while time.monotonic() < until:
                await many(several)
                done += batch
        elif mode == "client":
            done = await sdk_stream(channel_target, until)
        else:
            # Pipelined: up to WINDOW requests in flight on the stream, as an
            # agent with many concurrent tasks sharing one stream sends them.
            call = stream()  # type: ignore[call-arg]  # written with call.write()
            window = asyncio.Semaphore(WINDOW)

            async def write() -> None:
                while time.monotonic() < until:
                    await window.acquire()
                    count = 1
                    # "packed": every free place in the window is a request
                    # waiting to be sent; all go in this message.
                    while mode == "packed" and count < WINDOW and not window.locked():
                        await window.acquire()
                        count += 1
                    await call.write(message if count == 1 else packs[count])
                await call.done_writing()

            writer = asyncio.create_task(write())
            while (answer := await call.read()) is not grpc.aio.EOF:  # type: ignore[attr-defined]
                assert isinstance(answer, bytes)
                answered = pb.EnforceStreamResponse.FromString(answer)
                count = len(answered.answers) or 1
                for _ in range(count):
                    window.release()
                done += count
            await writer
        return done

    return sum(await asyncio.gather(*(caller() for _ in range(concurrency))))


async def measure(
    address: str, pid: int, mode: str, concurrency: int, batch: int, seconds: float
) -> Run:
    async with grpc.aio.insecure_channel(address) as channel:
        await drive(channel, address, mode, concurrency, batch, 0.3)  # warm up, not recorded
        cpu, wall = cpu_seconds(pid), time.monotonic()
        decisions = await drive(channel, address, mode, concurrency, batch, seconds)
        return Run(decisions, time.monotonic() - wall, cpu_seconds(pid) - cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per mode and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--batch", type=int, default=20, help="requests per EnforceBatch")
    args = parser.parse_args()
    print(describe_machine())
    print(f"command: {shlex.join([Path(sys.executable).name, *sys.argv])}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        server = ["serve", "--snapshot", str(REPO / "examples" / "policies.yaml")]
        server += ["--listen", "127.0.0.1:0", "--state", str(Path(tmp) / "state.db")]
        sidecar = PdpProcess(server)
        try:
            rounds: list[dict[str, Run]] = []
            for index in range(args.rounds):
                order = MODES if index % 2 == 0 else tuple(reversed(MODES))
                rounds.append(
                    {
                        mode: asyncio.run(
                            measure(
                                sidecar.address,
                                sidecar.proc.pid,
                                mode,
                                args.concurrency,
                                args.batch,
                                args.seconds,
                            )
                        )
                        for mode in order
                    }
                )
                print(".", end="", file=sys.stderr, flush=True)
            print(file=sys.stderr)
        finally:
            sidecar.stop()
    report(rounds, args)


def report(rounds: list[dict[str, Run]], args: argparse.Namespace) -> None:
    print(
        f"\nconcurrency {args.concurrency}, batch {args.batch}, "
        f"{args.rounds} rounds of {args.seconds:g} s per mode"
    )
    print("| mode | decisions/s | decisions per sidecar CPU-second | ratio to unary (per CPU) |")
    print("|---|---|---|---|")
    for mode in MODES:
        rate = statistics.median(r[mode].per_second for r in rounds)
        per_cpu = statistics.median(r[mode].per_cpu_second for r in rounds)
        ratios = [r[mode].per_cpu_second / r["unary"].per_cpu_second for r in rounds]
        print(
            f"| {mode} | {rate:,.0f} | {per_cpu:,.0f} | {statistics.median(ratios):.2f}x "
            f"[{min(ratios):.2f}-{max(ratios):.2f}] |"
        )


if __name__ == "__main__":
    main()
