// classroom's screen client: what htmx can't do on its own.
//
// - keeps one WebSocket per screen, reconnecting with a capped, jittered delay;
// - estimates this device's offset to the server clock (NTP-style ping/pong,
//   keeping the sample with the smallest round trip);
// - ticks the countdown locally from the server's deadline, so the server never
//   has to push a message per second;
// - shows cues and the connection state.
// See docs/protocol.md for the messages.

const TICK_MS = 100;
const RESYNC_MS = 30_000;
const SYNC_SAMPLES = 5;
const SILENCE_MS = 40_000; // the server beats every 15 s; this long without a word means it's gone

const pad = (n) => String(n).padStart(2, "0");

export function formatRemaining(ms) {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = total % 60;
  return hours ? `${hours}:${pad(minutes)}:${pad(seconds)}` : `${minutes}:${pad(seconds)}`;
}

// An id for an input, unique enough to count it exactly once. crypto.randomUUID needs
// https; a gym's server is often plain http on the local network, so build one.
export function clientId() {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// Inputs waiting for the server's acknowledgement, kept in localStorage so they
// survive a reload, a lock screen or a dead battery, and are sent again on reconnect.
export class Outbox {
  constructor(key, send) {
    this.key = key;
    this.send = send;
    this.items = [];
    try {
      this.items = JSON.parse(localStorage.getItem(key) || "[]");
    } catch {
      this.items = [];
    }
  }

  save() {
    localStorage.setItem(this.key, JSON.stringify(this.items));
  }

  add(item) {
    const message = { ...item, id: clientId() };
    this.items.push(message);
    this.save();
    this.send(message);
    return message;
  }

  flush() {
    for (const item of this.items) this.send(item);
  }

  // Forget an input the server has answered; returns it, or undefined if unknown.
  settle(id) {
    const item = this.items.find((candidate) => candidate.id === id);
    if (item) {
      this.items = this.items.filter((candidate) => candidate !== item);
      this.save();
    }
    return item;
  }
}

export function reconnectDelay(attempt, base = 500, cap = 5000) {
  const ceiling = Math.min(cap, base * 2 ** attempt);
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

class ClassScreen {
  constructor(root) {
    this.root = root;
    this.url = new URL(root.dataset.socket, location.href);
    this.url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    this.level = root.dataset.level || "standard";
    this.timer = root.querySelector("[data-timer]");
    this.connection = document.querySelector("[data-connection]");
    this.offsetMs = 0;
    this.bestRtt = Infinity;
    this.view = null;
    this.attempt = 0;
    this.pingId = 0;
    this.sent = new Map();
    this.lastHeard = Date.now();
    this.scored = 0;
    const owner = root.dataset.participant;
    if (owner) {
      this.outbox = new Outbox(`classroom.outbox.${root.dataset.classId}.${owner}`, (m) => this.send(m));
      this.scored = Number(localStorage.getItem(this.scoredKey()) || 0);
    }
    setInterval(() => this.render(), TICK_MS);
    setInterval(() => this.sync(), RESYNC_MS);
    setInterval(() => this.watch(), 5000);
  }

  scoredKey() {
    return `classroom.scored.${this.root.dataset.classId}.${this.root.dataset.participant}`;
  }

  // A socket that has heard nothing for too long is dead even if it looks open.
  watch() {
    if (this.ws?.readyState === WebSocket.OPEN && Date.now() - this.lastHeard > SILENCE_MS) {
      this.ws.close();
    }
  }

  score(value = 1) {
    const segment = this.view?.segment;
    if (!this.outbox || !segment) return;
    this.outbox.add({ type: "score", segment: segment.index, kind: segment.score_kind, value });
    this.renderScore();
  }

  renderScore() {
    const pending = this.outbox ? this.outbox.items.length : 0;
    for (const el of document.querySelectorAll("[data-my-score]")) {
      el.textContent = String(this.scored + pending);
    }
    for (const el of document.querySelectorAll("[data-pending]")) {
      el.textContent = pending ? `${pending} waiting to send` : "";
    }
  }

  serverNow() {
    return Date.now() + this.offsetMs;
  }

  field(name) {
    return this.timer?.querySelector(`[data-field="${name}"]`);
  }

  connect() {
    this.setConnection("connecting", "Connecting…");
    const url = new URL(this.url);
    if (this.view && typeof this.view.seq === "number" && this.view.epoch) {
      // Come back where we left off: the server replays what we missed, in order.
      url.searchParams.set("since", String(this.view.seq));
      url.searchParams.set("epoch", this.view.epoch);
    }
    const ws = new WebSocket(url);
    this.ws = ws;
    ws.onopen = () => {
      this.attempt = 0;
      this.bestRtt = Infinity;
      this.lastHeard = Date.now();
      this.setConnection("live", "Live");
      this.sync();
      this.outbox?.flush();
      this.renderScore();
    };
    ws.onmessage = (event) => {
      this.lastHeard = Date.now();
      this.receive(JSON.parse(event.data));
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      const delay = reconnectDelay(this.attempt++);
      this.setConnection("reconnecting", "Reconnecting…");
      setTimeout(() => this.connect(), delay);
    };
  }

  send(message) {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  sync() {
    for (let i = 0; i < SYNC_SAMPLES; i++) {
      setTimeout(() => {
        const id = `p${++this.pingId}`;
        this.sent.set(id, performance.now());
        this.send({ type: "ping", id, t: Date.now() });
      }, i * 120);
    }
  }

  receive(message) {
    const view = this.view;
    if (message.type !== "snapshot" && typeof message.seq === "number" && view) {
      if (message.seq <= view.seq) return; // already have it
      if (message.seq > view.seq + 1) {
        // A gap can't be filled from here: start again from a fresh snapshot.
        this.view = null;
        this.ws?.close();
        return;
      }
    }
    switch (message.type) {
      case "pong": return this.pong(message);
      case "resumed":
        if (view) view.epoch = message.epoch;
        return;
      case "ack": {
        const item = this.outbox?.settle(message.id);
        if (item && !message.duplicate) {
          this.scored += item.value;
          localStorage.setItem(this.scoredKey(), String(this.scored));
        }
        this.renderScore();
        return;
      }
      case "presence":
        for (const el of document.querySelectorAll("[data-presence]")) {
          const n = message.participants.length;
          el.textContent = `${n} connected · ${message.displays} display${message.displays === 1 ? "" : "s"}`;
        }
        return;
      case "heartbeat":
        return;
      case "snapshot":
        this.view = { ...message };
        if (typeof message.server_now === "number" && this.bestRtt === Infinity) {
          this.offsetMs = message.server_now - Date.now();
        }
        break;
      case "phase":
        if (!view) return;
        if (message.phase === "paused" && view.ends_at) {
          view.remaining_ms = view.ends_at - message.at;
          view.ends_at = null;
        }
        if (message.phase === "finished" || message.phase === "cancelled") view.ends_at = null;
        view.phase = message.phase;
        break;
      case "segment":
        if (!view) return;
        view.segment = message.segment;
        view.starts_at = null;
        view.remaining_ms = message.remaining_ms;
        view.ends_at = view.phase === "paused" ? null : message.ends_at;
        if (view.phase === "countdown" || view.phase === "lobby") view.phase = "running";
        break;
      case "cue":
      case "shout":
        // A cue replayed long after its instant (after a restart) is old news.
        if (message.type === "shout" || this.serverNow() - message.at < 3000) {
          this.showCue(message.text);
        }
        break;
      case "notice":
        this.showCue(message.message);
        break;
      case "roster":
        for (const el of document.querySelectorAll("[data-participant-count]")) {
          el.textContent = String(message.count);
        }
        return;
      case "error":
        if (message.id && this.outbox?.settle(message.id)) {
          this.showCue(message.message); // an input the class refused: it won't be retried
          this.renderScore();
        }
        console.warn("classroom:", message.code, message.message);
        return;
      default:
        return;
    }
    if (typeof message.seq === "number" && this.view) this.view.seq = message.seq;
    this.render();
    document.dispatchEvent(new CustomEvent("classroom:message", { detail: message }));
  }

  pong(message) {
    const sentAt = this.sent.get(message.id);
    this.sent.delete(message.id);
    if (sentAt === undefined || typeof message.server_now !== "number") return;
    const rtt = performance.now() - sentAt;
    if (rtt <= this.bestRtt) {
      this.bestRtt = rtt;
      this.offsetMs = message.server_now + rtt / 2 - Date.now();
    }
  }

  remainingMs() {
    const view = this.view;
    if (!view) return null;
    if (view.phase === "countdown" && view.starts_at) return view.starts_at - this.serverNow();
    if (view.phase === "running" && view.ends_at) return view.ends_at - this.serverNow();
    if (view.phase === "paused") return view.remaining_ms;
    return null;
  }

  render() {
    const view = this.view;
    if (!view || !this.timer) return;
    const segment = view.segment;
    this.timer.dataset.phase = view.phase;
    this.timer.dataset.kind = segment?.kind ?? "";
    this.root.dataset.phase = view.phase;
    const names = {
      lobby: "Waiting for the instructor to start",
      countdown: "Get ready",
      finished: "Class finished — great work!",
      cancelled: "This class was cancelled",
    };
    const showSegment = segment && (view.phase === "running" || view.phase === "paused");
    this.setText("segment", showSegment ? segment.name : names[view.phase] ?? "");
    const move = showSegment && segment.exercise
      ? segment.exercise.modifications?.[this.level] || segment.exercise.name
      : "";
    this.setText("move", move && move !== segment.name ? move : "");
    let label = showSegment ? segment.label || `Segment ${segment.index + 1} of ${segment.count}` : "";
    if (view.phase === "paused") label = "Paused";
    this.setText("label", label);
    const remaining = this.remainingMs();
    this.setText("countdown", remaining === null ? "--:--" : formatRemaining(remaining));
    for (const input of this.root.querySelectorAll("[data-from-segment]")) {
      input.value = segment ? String(segment.index) : "";
    }
    const fill = this.root.querySelector('[data-field="progress"]');
    if (fill && view.total_ms) {
      let done = 0;
      if (segment && remaining !== null) {
        const into = Math.min(segment.duration_ms, Math.max(0, segment.duration_ms - remaining));
        done = (segment.start_ms + into) / view.total_ms;
      } else if (view.phase === "finished") done = 1;
      fill.style.width = `${(done * 100).toFixed(2)}%`;
      fill.parentElement?.setAttribute("aria-valuenow", String(Math.round(done * 100)));
    }
    const scoring = this.root.querySelector("[data-scoring]");
    if (scoring) {
      scoring.hidden = !(showSegment && segment.score_kind !== "none");
    }
    const nextLine = this.field("next-line");
    if (nextLine) nextLine.hidden = !(showSegment && segment.next);
    this.setText("next", showSegment && segment.next ? segment.next : "");
  }

  setText(name, text) {
    const el = this.field(name);
    if (el && el.textContent !== text) el.textContent = text;
  }

  showCue(text) {
    const el = this.field("cue");
    if (!el) return;
    el.textContent = text;
    clearTimeout(this.cueTimer);
    this.cueTimer = setTimeout(() => { el.textContent = ""; }, 4000);
  }

  setConnection(state, text) {
    if (!this.connection) return;
    this.connection.dataset.connection = state;
    this.connection.textContent = text;
  }
}

const root = document.querySelector("[data-socket]");
if (root) {
  const screen = new ClassScreen(root);
  window.classroomScreen = screen;
  screen.connect();
  if (root.querySelector("[data-controls]")) bindShortcuts(root);
  for (const button of root.querySelectorAll("[data-score-button]")) {
    button.addEventListener("click", () => screen.score(Number(button.dataset.value || 1)));
  }
}

// Console shortcuts: Space pauses or resumes, the arrows move next and back.
function bindShortcuts(root) {
  const submit = (name) => root.querySelector(`[data-control="${name}"]`)?.requestSubmit();
  document.addEventListener("keydown", (event) => {
    const target = event.target;
    if (target.closest?.("input, textarea, select, button, [contenteditable]")) return;
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    const phase = root.dataset.phase;
    if (event.key === " ") {
      event.preventDefault();
      submit(phase === "paused" ? "resume" : phase === "lobby" ? "start" : "pause");
    } else if (event.key === "ArrowRight") {
      submit("next");
    } else if (event.key === "ArrowLeft") {
      submit("previous");
    }
  });
}

if (window.htmx) {
  // Show the server's refusal of a control (409) instead of dropping it.
  window.htmx.config.responseHandling = [
    { code: "204", swap: false },
    { code: "[23]..", swap: true },
    { code: "40[09]|503", swap: true, error: false },
    { code: "...", swap: false, error: true },
  ];
}
