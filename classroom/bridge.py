"""The heart-rate bridge: straps in a studio, sent to a room on the classroom server.

A small box in the studio runs ``classroom hr-bridge``. It listens to every
heart-rate strap in range (the standard Bluetooth Heart Rate service) and sends
their raw measurements to the server over one WebSocket, authenticated with a
bridge token an instructor created for a room. The server parses them; the
bridge only relays bytes.

The conversation, in JSON text messages:

* the server, first: ``{"type": "hello", "room": "<room name>", "bridge": "<label>"}``;
* the bridge, every ``interval_s``, the latest reading of each strap heard since
  its last message (only those; at most 200 straps a message):
  ``{"type": "readings", "readings": [{"strap": "<id>", "data": "<lowercase hex>"}]}``;
* the server, when something is wrong with them:
  ``{"type": "error", "code": "...", "message": "..."}`` (logged; the bridge carries on).

The token travels in the ``Authorization: Bearer`` header only: never in the URL,
never in a log line. A refused token (HTTP 401 or 403 before the upgrade, or a
close with code 1008 after it) ends the bridge with :data:`REFUSED`; any other
drop is retried, with a growing pause (:data:`BACKOFF_S`), while the straps go
on being heard (the readings meanwhile are coalesced to the latest per strap).

Sources of readings: :class:`SimulatedStraps` (for trying things out, and for
tests) and :class:`BleakStraps` (real straps, through the ``bleak`` library).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from classroom import __version__
from classroom.domain.heart import encode_measurement

log = logging.getLogger("classroom.bridge")

HEART_RATE_SERVICE_UUID = "0000180d-0000-1000-8000-00805f9b34fb"
HEART_RATE_MEASUREMENT_UUID = "00002a37-0000-1000-8000-00805f9b34fb"

REFUSED = "The server refused the bridge token: it is wrong or revoked."
NO_BLEAK = "The bridge needs the bleak library: pip install 'classroom[bridge]'"
NO_ENDPOINT = (
    "The server has no bridge endpoint (HTTP 404): is the address that of a classroom"
    " server, and is the server up to date?"
)
BAD_SERVER = (
    "The server's address must be like https://classroom.example.com"
    " or http://192.168.1.10:8000 (nothing after the host, port and path)."
)

BACKOFF_S: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 10.0)
"""Pauses before connecting again after a drop; the last one repeats."""
MAX_STRAPS_PER_MESSAGE = 200
HELLO_TIMEOUT_S = 10.0
"""How long the server has to say hello once connected (and to answer the upgrade)."""

Sleep = Callable[[float], Awaitable[None]]


class BridgeError(Exception):
    """A problem that ends the bridge; its message is one line, meant for people."""


@dataclass(frozen=True, slots=True)
class Reading:
    """One notification of a strap: its id (Bluetooth address, or simulator name), its bytes."""

    strap: str
    data: bytes


class StrapSource(Protocol):
    """Where readings come from.

    ``readings`` is an async generator (``async def readings(self) ->
    AsyncIterator[Reading]`` with ``yield`` in it): it yields readings as they
    come, each strap about once a second, until it is closed.
    """

    def readings(self) -> AsyncIterator[Reading]: ...


# -- The simulator ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Layout:
    """Which optional fields a strap's measurements carry (the flags byte)."""

    wide: bool  # heart rate as 16 bits rather than 8
    contact: bool | None  # None: the strap has no skin-contact sensor
    rr: bool
    energy: bool


# Kinds of strap, as met in gyms; strap n gets layout n modulo their number.
_LAYOUTS = (
    _Layout(wide=False, contact=True, rr=True, energy=False),  # the usual chest strap
    _Layout(wide=True, contact=None, rr=False, energy=False),  # an optical armband
    _Layout(wide=False, contact=True, rr=True, energy=True),  # a strap that counts energy
    _Layout(wide=True, contact=True, rr=True, energy=False),
    _Layout(wide=False, contact=None, rr=False, energy=False),  # the cheapest kind
)


class _SimulatedStrap:
    """One person's heart through a class: resting, warming up, then intervals."""

    def __init__(self, strap: str, layout: _Layout, rng: random.Random) -> None:
        self.strap = strap
        self.layout = layout
        self.rng = rng
        self.rest = rng.uniform(60.0, 80.0)
        self.work = rng.uniform(130.0, 185.0)  # where this person's hard efforts go
        self.ramp_s = rng.uniform(150.0, 300.0)  # the warm-up, a few minutes
        self.work_s = rng.uniform(40.0, 90.0)  # intervals: work, then recovery
        self.recover_s = rng.uniform(20.0, 45.0)
        self.dip = rng.uniform(18.0, 32.0)  # how far the heart falls while recovering
        self.bpm = self.rest + rng.uniform(-3.0, 3.0)
        self.beats = rng.random()  # the part of a beat already under way
        self.energy_kj = 0.0

    def target(self, t: float) -> float:
        """Where the heart is heading at ``t`` seconds into the class."""
        warm = min(1.0, t / self.ramp_s)
        level = self.rest + (self.work - self.rest) * warm
        intervals_from = self.ramp_s / 2  # they start half-way through the warm-up
        if t > intervals_from:
            phase = (t - intervals_from) % (self.work_s + self.recover_s)
            if phase >= self.work_s:
                level -= self.dip * warm
        return level

    def measure(self, t: float, dt: float) -> bytes:
        """The notification sent at ``t``, ``dt`` seconds after the previous one."""
        rng = self.rng
        target = self.target(t)
        tau = 20.0 if target > self.bpm else 30.0  # seconds: hearts speed up faster
        self.bpm += (target - self.bpm) * (1.0 - math.exp(-dt / tau)) + rng.gauss(0.0, 0.8)
        self.bpm = min(195.0, max(45.0, self.bpm))
        bpm = round(self.bpm)
        rr: list[int] = []
        if self.layout.rr:  # the beats that ended since the last notification
            self.beats += self.bpm / 60.0 * dt
            count = int(self.beats)
            self.beats -= count
            mean_ms = 60_000.0 / self.bpm
            rr = [round(mean_ms * (1.0 + rng.gauss(0.0, 0.03))) for _ in range(min(count, 4))]
        energy: int | None = None
        if self.layout.energy:  # roughly: more work, more kilojoules a minute
            self.energy_kj += max(5.0, 5.0 + 0.45 * (self.bpm - 60.0)) * dt / 60.0
            energy = min(0xFFFF, int(self.energy_kj))
        return encode_measurement(
            bpm, wide=self.layout.wide, contact=self.layout.contact, energy_kj=energy, rr_ms=rr
        )


class SimulatedStraps:
    """``count`` made-up straps, each notifying once a ``period_s``; the same for a seed.

    Their ids are "SIM-01", "SIM-02", … unless ``ids`` are given. The hearts start
    at rest (60 to 80 bpm), warm up over a few minutes towards each person's working
    level (130 to 185 bpm), then swing through work and recovery intervals, with a
    little noise. The straps are of several kinds (8- or 16-bit heart rate, with or
    without a contact sensor, RR intervals, energy). ``sleep`` waits between
    notifications; tests give a faster one.
    """

    def __init__(
        self,
        count: int,
        *,
        seed: int = 0,
        period_s: float = 1.0,
        ids: Sequence[str] | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if count < 1:
            raise ValueError("the simulator needs at least one strap")
        if period_s <= 0:
            raise ValueError("period_s must be positive")
        if ids is not None and len(ids) != count:
            raise ValueError(f"{count} straps need {count} ids, not {len(ids)}")
        self.ids = (
            tuple(ids) if ids is not None else tuple(f"SIM-{n:02d}" for n in range(1, count + 1))
        )
        self.seed = seed
        self.period_s = period_s
        self._sleep = sleep

    async def readings(self) -> AsyncIterator[Reading]:
        straps = [
            _SimulatedStrap(
                strap, _LAYOUTS[n % len(_LAYOUTS)], random.Random(self.seed * 1_000_003 + n)
            )
            for n, strap in enumerate(self.ids)
        ]
        gap = self.period_s / len(straps)  # real straps don't notify all at once
        tick = 0
        while True:
            t = tick * self.period_s
            for strap in straps:
                yield Reading(strap.strap, strap.measure(t, self.period_s))
                await self._sleep(gap)
            tick += 1


# -- Real straps -----------------------------------------------------------------------


class BleakStraps:
    """The heart-rate straps in range of a Bluetooth adapter, through ``bleak``.

    A scanner runs all along, looking for devices that advertise the Heart Rate
    service; each one found is connected (a task of its own) and its measurement
    notifications are queued. A strap that disconnects is forgotten, for the
    scanner to find again. ``adapter`` names the adapter (``hci0``; Linux only).
    """

    def __init__(self, adapter: str | None = None) -> None:
        self.adapter = adapter

    async def readings(self) -> AsyncIterator[Reading]:
        try:
            import bleak
        except ImportError:
            raise BridgeError(NO_BLEAK) from None
        options: dict[str, Any] = {"adapter": self.adapter} if self.adapter else {}
        queue: asyncio.Queue[Reading] = asyncio.Queue(maxsize=1000)
        followed: dict[str, asyncio.Task[None]] = {}

        def found(device: Any, _advertisement: Any) -> None:
            address = str(device.address)
            if address in followed:
                return
            task = asyncio.create_task(_follow(bleak, device, queue, options))
            followed[address] = task
            task.add_done_callback(lambda _: followed.pop(address, None))

        scanner = bleak.BleakScanner(found, service_uuids=[HEART_RATE_SERVICE_UUID], **options)
        try:
            await scanner.start()
        except Exception as exc:  # no adapter, Bluetooth off, no permission
            raise BridgeError(f"Bluetooth scanning could not start: {exc}") from None
        log.info("listening for heart-rate straps")
        try:
            while True:
                yield await queue.get()
        finally:
            for task in list(followed.values()):
                task.cancel()
            await asyncio.gather(*followed.values(), return_exceptions=True)
            with contextlib.suppress(Exception):
                await scanner.stop()


async def _follow(
    bleak: Any, device: Any, queue: asyncio.Queue[Reading], options: dict[str, Any]
) -> None:
    """Connect one strap and queue its notifications until it disconnects."""
    address = str(device.address)
    gone = asyncio.Event()

    def notified(_sender: Any, data: bytearray) -> None:
        with contextlib.suppress(asyncio.QueueFull):  # the bridge is behind: drop it
            queue.put_nowait(Reading(address, bytes(data)))

    try:
        async with bleak.BleakClient(
            device, disconnected_callback=lambda _client: gone.set(), **options
        ) as client:
            await client.start_notify(HEART_RATE_MEASUREMENT_UUID, notified)
            log.info("strap %s (%s) connected", address, device.name or "no name")
            await gone.wait()
        log.info("strap %s disconnected", address)
    except Exception as exc:  # BleakError, a timeout: the scanner will find it again
        log.warning("strap %s: %s", address, str(exc) or type(exc).__name__)


# -- The link to the server ------------------------------------------------------------


def bridge_url(server: str) -> str:
    """The WebSocket address of the bridge endpoint of ``server`` (``http(s)://host:port``)."""
    try:
        parts = urlsplit(server.strip())
        parts.port  # noqa: B018 (raises ValueError for a port that isn't one)
    except ValueError:
        raise BridgeError(BAD_SERVER) from None
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme.lower())
    if (
        scheme is None
        or not parts.hostname
        or parts.query
        or parts.fragment
        or parts.username is not None
    ):
        raise BridgeError(BAD_SERVER)
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + "/ws/bridge", "", ""))


class _HideAuthorization(logging.Filter):
    """Keeps the token out of websockets' debug lines (it logs the request's headers)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 2 and str(args[0]).lower() == "authorization":
            record.args = (args[0], "…")
        return True


_socket_log = logging.getLogger("classroom.bridge.websocket")
_socket_log.addFilter(_HideAuthorization())


async def run_bridge(
    server: str,
    token: str,
    source: StrapSource,
    *,
    interval_s: float = 1.0,
    stop: asyncio.Event | None = None,
    log: logging.Logger = log,
    backoff: Sequence[float] = BACKOFF_S,
) -> None:
    """Send ``source``'s readings to ``server`` until ``stop`` is set.

    Raises :class:`BridgeError` when the server refuses the token (or has no
    bridge endpoint); every other drop is retried after the pauses of
    ``backoff`` (its last one repeating). If the source ends, what it gave is
    sent and the bridge returns; if it fails, its error is raised.
    """
    if not backoff or interval_s <= 0:
        raise ValueError("run_bridge needs a positive interval and at least one pause")
    if not token.strip():
        raise BridgeError("The bridge needs the room's bridge token.")
    link = _Link(bridge_url(server), token.strip(), interval_s, log, tuple(backoff))
    stop = stop if stop is not None else asyncio.Event()

    async def collect() -> None:
        async for reading in source.readings():
            link.pending[reading.strap] = reading.data

    collecting = asyncio.create_task(collect(), name="bridge: straps")
    linking = asyncio.create_task(link.run(), name="bridge: server")
    stopping = asyncio.create_task(stop.wait(), name="bridge: stop")
    tasks = {collecting, linking, stopping}
    try:
        waiting = set(tasks)
        while True:
            done, waiting = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if collecting in done and collecting.exception() is None and waiting:
                log.info("the straps' source ended: sending what is left")
                link.finishing = True
                continue
            break
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in (linking, collecting):
        if task.done() and not task.cancelled() and (error := task.exception()) is not None:
            raise error


class _Link:
    """The connection to the server, made again whenever it drops."""

    def __init__(
        self,
        url: str,
        token: str,
        interval_s: float,
        log: logging.Logger,
        backoff: tuple[float, ...],
    ) -> None:
        self.url = url
        self.token = token
        self.interval_s = interval_s
        self.log = log
        self.backoff = backoff
        self.pending: dict[str, bytes] = {}  # the latest reading of each strap, unsent
        self.finishing = False  # the source ended: return once nothing is pending

    async def run(self) -> None:
        failures = 0
        while True:
            greeted, reason = await self._connection()
            if reason is None:
                return
            if greeted:
                failures = 0
            pause = self.backoff[min(failures, len(self.backoff) - 1)]
            failures += 1
            self.log.warning("%s; connecting again in %g s", reason, pause)
            await asyncio.sleep(pause)

    async def _connection(self) -> tuple[bool, str | None]:
        """One connection, from opening to end: (whether the server said hello, why it ended).

        The reason is None when the source ended and everything was sent.
        """
        greeted = False
        try:
            async with connect(
                self.url,
                additional_headers={"Authorization": f"Bearer {self.token}"},
                user_agent_header=f"classroom-bridge/{__version__}",
                open_timeout=HELLO_TIMEOUT_S,
                close_timeout=2.0,
                ping_interval=10.0,
                ping_timeout=10.0,
                max_size=2**16,
                logger=_socket_log,
            ) as socket:
                try:
                    await self._hello(socket)
                    greeted = True
                    return True, await self._exchange(socket)
                except asyncio.CancelledError:  # the bridge is stopping: a normal closure
                    await socket.close()
                    raise
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status in (401, 403):
                raise BridgeError(REFUSED) from None
            if status == 404:
                raise BridgeError(NO_ENDPOINT) from None
            return greeted, f"The server answered HTTP {status}"
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd is not None else None
            if code == 1008:
                raise BridgeError(REFUSED) from None
            return greeted, _closed(code)
        except TimeoutError:
            return greeted, "The server did not answer"
        except OSError as exc:
            return greeted, f"The server is unreachable ({exc.strerror or exc})"
        except WebSocketException as exc:
            return greeted, f"The connection to the server failed ({exc})"

    async def _hello(self, socket: ClientConnection) -> None:
        async with asyncio.timeout(HELLO_TIMEOUT_S):
            while True:
                message = _decoded(await socket.recv())
                if message.get("type") == "hello":
                    self.log.info(
                        "connected to %s: room %r, as bridge %r",
                        self.url,
                        message.get("room"),
                        message.get("bridge"),
                    )
                    return
                self._answer(message)

    async def _exchange(self, socket: ClientConnection) -> str | None:
        """Send the pending readings every interval until the connection ends."""
        listening = asyncio.create_task(self._listen(socket))
        try:
            while True:
                await asyncio.wait({listening}, timeout=self.interval_s)
                if listening.done():
                    break
                await self._send(socket)
                if self.finishing and not self.pending:
                    await socket.close()
                    return None
        finally:
            listening.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await listening
        if socket.close_code == 1008:
            raise BridgeError(REFUSED)
        return _closed(socket.close_code)

    async def _send(self, socket: ClientConnection) -> None:
        batch, self.pending = self.pending, {}
        straps = list(batch.items())
        for start in range(0, len(straps), MAX_STRAPS_PER_MESSAGE):
            chunk = straps[start : start + MAX_STRAPS_PER_MESSAGE]
            message = {
                "type": "readings",
                "readings": [{"strap": strap, "data": data.hex()} for strap, data in chunk],
            }
            try:
                await socket.send(json.dumps(message, separators=(",", ":")))
            except ConnectionClosed:  # unsent: keep them, unless newer ones came meanwhile
                for strap, data in straps[start:]:
                    self.pending.setdefault(strap, data)
                raise

    async def _listen(self, socket: ClientConnection) -> None:
        async for raw in socket:  # ends when the connection does
            self._answer(_decoded(raw))

    def _answer(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "error":
            self.log.warning(
                "the server says: %s (%s)", message.get("message"), message.get("code")
            )
        elif kind != "hello":
            self.log.debug("ignored a message of type %r", kind)


def _decoded(raw: str | bytes) -> dict[str, Any]:
    try:
        message = json.loads(raw)
    except ValueError:
        return {}
    return message if isinstance(message, dict) else {}


def _closed(code: int | None) -> str:
    if code is None:
        return "The connection to the server was lost"
    return f"The server closed the connection (code {code})"
