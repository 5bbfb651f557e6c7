"""What a server process measures, in the Prometheus format (``/metrics``).

Every app has a :class:`Metrics` of its own, with a registry of its own (never
``prometheus_client``'s global one), so several servers in one process keep
their figures apart, and a supervisor of several workers could one day gather
each worker's registry into one answer.

Two kinds of figure:

Observed as things happen
    Histograms and counters, each label bound once, here: the hot paths (a score
    input, a fan-out) call ``observe`` or ``inc`` on an attribute, and build no
    label dict per input.

Read at scrape time
    How many screens are connected, how many classes this process runs, how
    many sockets were refused: :class:`_Now` asks the hub, the class registry
    and the admission counts (through the callables given to :meth:`Metrics.watch`)
    whenever ``/metrics`` is read, so nothing is counted twice or drifts.

This module depends on nothing of classroom's: the hub, the class registry and
the stores are handed a :class:`Metrics`, never the other way round. Every
metric is listed in ``docs/metrics.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
SCREEN_ROLES = ("instructor", "participant", "display")
"""The roles a screen has; each is always reported, 0 when none is connected."""

# Buckets, in seconds, around what each figure is expected to be.
LATENESS_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
ACK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0)
FANOUT_BUCKETS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
BROKER_BUCKETS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0, 5.0)
COMMIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)

#: Screens connected now, by role.
ScreenCounts = Callable[[], Mapping[str, int]]
#: Classes run by this process now, by phase (every phase, 0 included).
ClassCounts = Callable[[], Mapping[str, int]]
#: Sockets open now, and sockets refused since the process started.
SocketCounts = Callable[[], tuple[int, int]]


class Metrics:
    """One process's metrics: what the shell observes, and what is read at scrape time."""

    def __init__(self, node: str = "local") -> None:
        self.node = node
        self.registry = CollectorRegistry()
        registry = self.registry

        lateness = Histogram(
            "classroom_cue_lateness_seconds",
            "How late a timed class event was published, after the instant it was due.",
            ["event"],
            registry=registry,
            buckets=LATENESS_BUCKETS,
        )
        self.cue_lateness = lateness.labels("cue")
        self.segment_lateness = lateness.labels("segment")
        self.phase_lateness = lateness.labels("phase")
        self.score_ack = Histogram(
            "classroom_score_ack_seconds",
            "From reading a score input off its socket to knowing it is stored (its ack).",
            registry=registry,
            buckets=ACK_BUCKETS,
        )
        self.fanout = Histogram(
            "classroom_fanout_seconds",
            "From the hub having a message for a class's screens to its write to the last one.",
            registry=registry,
            buckets=FANOUT_BUCKETS,
        )
        self.broker_lag = Histogram(
            "classroom_broker_lag_seconds",
            "From publishing a class event to the broker to this process's hub receiving it.",
            registry=registry,
            buckets=BROKER_BUCKETS,
        )
        commit = Histogram(
            "classroom_db_commit_seconds",
            "How long a database write took: a batch of score inputs, or a class transition.",
            ["what"],
            registry=registry,
            buckets=COMMIT_BUCKETS,
        )
        self.commit_scores = commit.labels("scores")
        self.commit_transition = commit.labels("transition")
        inputs = Counter(
            "classroom_score_inputs",
            "Score inputs answered, by outcome: stored, repeat (already counted) or refused.",
            ["outcome"],
            registry=registry,
        )
        self.inputs_stored = inputs.labels("stored")
        self.inputs_repeat = inputs.labels("repeat")
        self.inputs_refused = inputs.labels("refused")
        commands = Counter(
            "classroom_commands",
            "Class commands (start, pause, next, ...), by outcome: applied or rejected.",
            ["outcome"],
            registry=registry,
        )
        self.commands_applied = commands.labels("applied")
        self.commands_rejected = commands.labels("rejected")
        self.heart_samples = Counter(
            "classroom_heart_samples",
            "Heart-rate samples, by outcome: taken, or dropped with its reason"
            " (garbled, no_contact, out_of_range, flood, unclaimed).",
            ["outcome"],
            registry=registry,
        )
        self.lease_renewals = Counter(
            "classroom_lease_renewals",
            "Class ownership leases this process renewed (0 until classes have owners).",
            registry=registry,
        )
        self.lease_takeovers = Counter(
            "classroom_lease_takeovers",
            "Classes this process took over from another owner (0 until classes have owners).",
            registry=registry,
        )
        self._now = _Now(node)
        registry.register(self._now)

    def watch(self, *, screens: ScreenCounts, classes: ClassCounts, sockets: SocketCounts) -> None:
        """Read these at every scrape (the app's lifespan calls this once it has them)."""
        self._now.sources = (screens, classes, sockets)

    def exposition(self) -> bytes:
        """Every metric, in the Prometheus text format (:data:`CONTENT_TYPE`)."""
        return generate_latest(self.registry)


class _Now:
    """The figures read at scrape time: screens, classes and sockets (see :meth:`Metrics.watch`)."""

    def __init__(self, node: str) -> None:
        self.node = node
        self.sources: tuple[ScreenCounts, ClassCounts, SocketCounts] | None = None

    def collect(self) -> Iterable[Metric]:
        if self.sources is None:  # before the app has started
            return
        screens_now, classes_now, sockets_now = self.sources
        screens = GaugeMetricFamily(
            "classroom_screens", "Screens connected to this process, by role.", labels=["role"]
        )
        counts = dict.fromkeys(SCREEN_ROLES, 0)
        counts.update(screens_now())
        for role, count in counts.items():
            screens.add_metric([role], count)
        yield screens
        classes = GaugeMetricFamily(
            "classroom_classes",
            "Classes run by this process, by phase; owner names the process (CLASSROOM_NODE).",
            labels=["phase", "owner"],
        )
        for phase, count in classes_now().items():
            classes.add_metric([phase, self.node], count)
        yield classes
        open_sockets, refused = sockets_now()
        yield GaugeMetricFamily(
            "classroom_sockets_open", "WebSockets open on this process.", value=open_sockets
        )
        yield CounterMetricFamily(
            "classroom_sockets_refused",
            "WebSockets refused by the connection limits since the process started.",
            value=refused,
        )
