// classroom's screen client: what htmx can't do on its own.
//
// - keeps one WebSocket per screen, reconnecting with a capped, jittered delay;
// - estimates this device's offset to the server clock (NTP-style ping/pong,
//   keeping the sample with the smallest round trip);
// - ticks the countdown locally from the server's deadline, so the server never
//   has to push a message per second;
// - shows cues and the connection state;
// - on a phone (with static/phone.js), the score input for the current segment's score kind, and what
//   this phone has logged (MyScores);
// - live leaderboards (renderBoards), from `leaderboard` messages.
// See docs/protocol.md for the messages.

import { reloadIfUpgraded, versionOf } from "./upgrade.js";

const PAGE_VERSION = versionOf(import.meta.url); // the assets this page was loaded with
const TICK_MS = 100;
const RESYNC_MS = 30_000;
const RESULTS_AFTER_MS = 10_000;
const CLOSE_FOR_GOOD = 1008; // the screen's link was revoked, or its class is gone: don't retry
const SYNC_SAMPLES = 5;
const CONNECT_TIMEOUT_MS = 10_000;
const SILENCE_MS = 40_000; // the server beats every 15 s; this long without a word means it's gone

const pad = (n) => String(n).padStart(2, "0");

export function formatRemaining(ms) {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = total % 60;
  return hours ? `${hours}:${pad(minutes)}:${pad(seconds)}` : `${minutes}:${pad(seconds)}`;
}

const UNITS = { calories: "cal", distance: "m", load: "kg" };

export function formatTime(ms) {
  const total = Math.max(0, Math.floor(ms / 1000));
  return `${Math.floor(total / 60)}:${pad(total % 60)}`;
}


function element(tag, className, text = "") {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text) el.textContent = text;
  return el;
}

// A team's badge: its colour, letter and pattern, so colour is never the only cue.
export function teamBadge(look, name = "") {
  const badge = element("span", `team-badge team-pattern-${look?.pattern || "none"}`);
  if (look?.colour) badge.style.setProperty("--team-colour", look.colour);
  badge.textContent = look?.letter || name.trim().charAt(0).toUpperCase() || "?";
  badge.setAttribute("aria-hidden", "true");
  return badge;
}

function ordinal(n) {
  const tens = n % 100;
  const suffix = tens >= 11 && tens <= 13 ? "th" : ["th", "st", "nd", "rd"][n % 10] || "th";
  return `${n}${suffix}`;
}

function boardRow(row, looks, isTeam) {
  const li = element("li", "board-row");
  li.dataset.id = String(row.id);
  li.dataset.rank = String(row.rank);
  li.append(element("span", "board-rank", String(row.rank)));
  const move = element("span", "board-move");
  if (row.movement) {
    const up = row.movement > 0;
    move.dataset.move = up ? "up" : "down";
    move.textContent = `${up ? "▲" : "▼"}${Math.abs(row.movement)}`;
    move.title = `${up ? "up" : "down"} ${Math.abs(row.movement)}`;
  }
  li.append(move);
  const teamId = isTeam ? row.id : row.team_id;
  if (teamId !== null && teamId !== undefined) {
    const look = looks.get(teamId);
    li.append(teamBadge(look, isTeam ? row.name : look?.name || ""));
  }
  const name = element("span", "board-name", row.name);
  if (!isTeam && row.division && row.division !== "rx") {
    name.append(" ", element("span", "board-division", row.division === "scaled" ? "Scaled" : "Beginner"));
  }
  li.append(name, element("span", "board-value", row.shown));
  li.append(element("span", "board-gap", row.gap ? `${row.gap} behind` : ""));
  return li;
}

function fill(list, rows, looks, isTeam) {
  if (!list) return;
  list.replaceChildren(...rows.map((row) => boardRow(row, looks, isTeam)));
  const block = list.closest(".board-block");
  if (block) block.hidden = rows.length === 0;
}

// Draw a `leaderboard` message into every [data-boards] on the page.
export function renderBoards(message, currentSegment = null) {
  const board = message.class;
  if (!board) return; // a class that has ended keeps its last board
  const looks = new Map((message.teams || []).map((team) => [team.id, team]));
  for (const root of document.querySelectorAll("[data-boards]")) {
    const limit = Number(root.dataset.boardRows || 8);
    const segment = message.segment;
    fill(root.querySelector("[data-team-board]"), board.teams, looks, true);
    fill(root.querySelector("[data-people-board]"), (segment?.people || []).slice(0, limit), looks, false);
    fill(root.querySelector("[data-class-board]"), board.people.slice(0, limit), looks, false);
    const title = root.querySelector("[data-people-title]");
    if (title && segment) {
      title.textContent = currentSegment === null || segment.segment_index === currentSegment
        ? "This segment" : "Last scored segment";
    }
    root.hidden = [...root.querySelectorAll(".board-block")].every((block) => block.hidden);
  }
}

// The console's roster: whose phone is connected now (from `presence` messages).
function markPresence(present) {
  for (const cell of document.querySelectorAll("[data-present-of]")) {
    const here = present.has(Number(cell.dataset.presentOf));
    cell.dataset.present = String(here);
    cell.textContent = here ? "● connected" : "○ away";
  }
}

// The wall's lobby: how many have joined each team (from `roster` messages).
function renderJoined(teams) {
  const item = (team) => {
    const li = element("li", "");
    li.append(teamBadge(team, team.name), " ", element("span", "wall-joined-name", team.name), " ",
      element("strong", "", String(team.count)));
    return li;
  };
  for (const list of document.querySelectorAll("[data-joined-teams]")) list.replaceChildren(...teams.map(item));
}

function renderArrivals(names) {
  for (const list of document.querySelectorAll("[data-joined-names]")) {
    list.replaceChildren(...names.map((name) => element("li", "", name)));
  }
}

// Half to all of min(cap, base·2^attempt): the room's phones don't all come back at
// once, and a screen is never more than `cap` away from noticing the server is back.
export function reconnectDelay(attempt, base = 500, cap = 4000) {
  const ceiling = Math.min(cap, base * 2 ** attempt);
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

class ClassScreen {
  // `phone`: static/phone.js, on a participant's phone (its inputs and what it logged).
  constructor(root, phone = null) {
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
    this.board = null;
    this.scoringKey = "";
    const owner = root.dataset.participant;
    if (owner && phone) {
      const classId = root.dataset.classId;
      this.outbox = new phone.Outbox(`classroom.outbox.${classId}.${owner}`, (m) => this.send(m));
      this.scored = Number(localStorage.getItem(this.scoredKey()) || 0);
      this.mine = new phone.MyScores(`classroom.mine.${classId}.${owner}`);
      this.divisionKey = `classroom.division.${classId}`;
    }
    setInterval(() => this.render(), TICK_MS);
    setInterval(() => this.sync(), RESYNC_MS);
    setInterval(() => this.watch(), 5000);
    window.addEventListener("online", () => this.reconnectNow());
    window.addEventListener("offline", () => this.drop());
    // Woken up: a socket that went quiet while the phone slept is dropped at once.
    document.addEventListener("visibilitychange", () => document.hidden || (this.watch(), this.reconnectNow()));
  }

  scoredKey() {
    return `classroom.scored.${this.root.dataset.classId}.${this.root.dataset.participant}`;
  }

  // A socket that has heard nothing for too long is dead even if it looks open.
  watch() {
    if (this.ws?.readyState !== WebSocket.OPEN) return;
    if (Date.now() - this.lastHeard > SILENCE_MS) {
      this.drop();
      return;
    }
    this.outbox?.retry();
  }

  division() {
    const checked = this.root.querySelector('[data-division] input[name="division"]:checked');
    return checked ? checked.value : "rx";
  }

  // The segment a phone can score now, if any.
  scoringSegment() {
    const view = this.view;
    const segment = view?.segment;
    if (!this.outbox || !segment || segment.score_kind === "none") return null;
    if (view.phase !== "running" && view.phase !== "paused") return null;
    return segment;
  }

  // Log an input for the current segment; it waits in the outbox until acknowledged.
  input(fields) {
    const segment = this.scoringSegment();
    if (!segment) return null;
    const item = this.outbox.add({
      type: "score",
      segment: segment.index,
      kind: segment.score_kind,
      division: this.division(),
      ...fields,
    });
    this.mine.sent(item);
    this.renderScore();
    return item;
  }

  score(value = 1) {
    this.input({ value });
  }

  undo() {
    const segment = this.scoringSegment();
    if (!segment) return;
    this.mine.takeBack(segment.index, (target) =>
      this.outbox.add({ type: "score", segment: segment.index, undo: target }));
    this.renderScore();
  }

  finish() {
    const segment = this.scoringSegment();
    if (!segment || segment.score_kind !== "time") return;
    const state = this.mine.segment(segment.index, "time");
    if (state.finished) return;
    const view = this.view;
    const left = view.ends_at ? view.ends_at - this.serverNow() : view.remaining_ms;
    state.finished = true;
    state.estimate = typeof left === "number" ? Math.max(0, segment.duration_ms - left) : null;
    this.mine.save();
    this.input({});
  }

  renderScore() {
    const pending = this.outbox ? this.outbox.items.length : 0;
    for (const el of document.querySelectorAll("[data-pending]")) {
      el.textContent = pending ? `${pending} waiting to send` : "";
    }
    if (!this.mine) return;
    const segment = this.scoringSegment();
    const kind = segment ? segment.score_kind : "";
    for (const el of this.root.querySelectorAll("[data-input-kind]")) {
      el.hidden = el.dataset.inputKind !== kind;
    }
    this.renderLast(segment);
    if (!segment) {
      this.renderTeam();
      return;
    }
    const mine = this.mine.result(segment.index, kind, this.outbox.items);
    const own = this.ownRow(this.board?.segment, segment.index);
    let text;
    if (kind === "reps") text = String(mine.value);
    else if (kind === "rounds_reps") text = `${mine.rounds} + ${mine.value}`;
    else if (kind === "time") {
      if (own) text = own.shown;
      else if (mine.finished) text = mine.estimate === null ? "Finished" : `≈ ${formatTime(mine.estimate)}`;
      else text = "—";
    } else if (kind === "effort") text = mine.value ? `RPE ${mine.value}` : "—";
    else text = `${mine.value} ${UNITS[kind] || ""}`.trim();
    for (const el of this.root.querySelectorAll("[data-my-score]")) el.textContent = text;
    for (const button of this.root.querySelectorAll("[data-undo]")) {
      button.disabled = !this.mine.canUndo(segment.index);
    }
    for (const button of this.root.querySelectorAll("[data-finish]")) {
      button.disabled = mine.finished;
      button.textContent = mine.finished ? "Finished ✓" : "Finish";
    }
    for (const button of this.root.querySelectorAll("[data-rpe]")) {
      button.setAttribute("aria-pressed", String(kind === "effort" && Number(button.dataset.rpe) === mine.value));
    }
    for (const el of this.root.querySelectorAll("[data-my-board]")) {
      el.textContent = own ? `On the board: ${ordinal(own.rank)} · ${own.shown}` : "";
    }
    this.renderTeam();
  }

  // Between scored segments (a rest, the end): what this phone did in the last one,
  // "Squats: you did 14 reps". The last scored segment is remembered on the phone.
  renderLast(segment) {
    const key = `classroom.last.${this.root.dataset.classId}.${this.root.dataset.participant}`;
    if (segment) {
      const last = { index: segment.index, kind: segment.score_kind, name: segment.name };
      if (this.lastScored?.index !== last.index) {
        this.lastScored = last;
        localStorage.setItem(key, JSON.stringify(last));
      }
    } else if (!this.lastScored) {
      try {
        this.lastScored = JSON.parse(localStorage.getItem(key) || "null");
      } catch {
        this.lastScored = null;
      }
    }
    const last = this.lastScored;
    let text = "";
    const current = this.view?.segment?.index ?? -1;
    const after = this.view?.phase === "finished" || current > (last?.index ?? Infinity);
    if (!segment && last && after && last.kind !== "effort") {
      const mine = this.mine.result(last.index, last.kind, this.outbox.items);
      let did = "";
      if (last.kind === "reps") did = mine.value === 1 ? "1 rep" : `${mine.value} reps`;
      else if (last.kind === "rounds_reps") did = `${mine.rounds} rounds + ${mine.value} reps`;
      else if (last.kind === "time") did = mine.finished ? "finished" : "";
      else did = mine.value ? `${mine.value} ${UNITS[last.kind] || ""}`.trim() : "";
      if (did) text = `${last.name}: you did ${did}`;
    }
    for (const el of this.root.querySelectorAll("[data-my-last]")) el.textContent = text;
  }

  ownRow(board, segmentIndex = null) {
    if (!board || (segmentIndex !== null && board.segment_index !== segmentIndex)) return null;
    const me = Number(this.root.dataset.participant);
    return board.people.find((row) => row.id === me) || null;
  }

  // "Team Blue: 2nd of 3 · 12 reps behind", from the class board.
  renderTeam() {
    const line = this.root.querySelector("[data-my-team]");
    const board = this.board?.class;
    if (!line || !board) return;
    const own = this.ownRow(board);
    const teamId = own?.team_id ?? (this.root.dataset.team ? Number(this.root.dataset.team) : null);
    const team = board.teams.find((row) => row.id === teamId);
    if (!team) {
      line.replaceChildren();
      return;
    }
    const look = (this.board.teams || []).find((t) => t.id === team.id);
    if (!board.people.length) {
      // Nobody has scored yet (the lobby, a warm-up): no one leads with nothing.
      line.replaceChildren(teamBadge(look, team.name), " ", `${team.name} · no scores yet`);
      return;
    }
    const standing = team.rank === 1 ? "leading" : team.gap ? `${team.gap} behind` : "";
    const text = `${team.name}: ${ordinal(team.rank)} of ${board.teams.length} · ${team.shown}` +
      (standing ? ` · ${standing}` : "");
    line.replaceChildren(teamBadge(look, team.name), " ", text);
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
    // A server whose network is gone may leave a connection opening for minutes.
    setTimeout(() => this.ws === ws && ws.readyState === WebSocket.CONNECTING && this.drop(), CONNECT_TIMEOUT_MS);
    ws.onopen = () => {
      this.bestRtt = Infinity;
      this.lastHeard = Date.now();
      this.setConnection("live", "Live");
      this.sync();
      this.outbox?.flush();
      this.renderScore();
    };
    ws.onmessage = (event) => {
      this.attempt = 0; // only a server that talks resets the delay, not one that hangs up
      this.lastHeard = Date.now();
      this.receive(JSON.parse(event.data));
    };
    ws.onclose = (event) => (event.code === CLOSE_FOR_GOOD ? this.shut(ws, event.reason) : this.lost(ws));
  }

  // The server closed this screen for good (its display link was revoked): no retry.
  shut(ws, reason) {
    if (this.ws !== ws) return;
    this.ws = null;
    this.closedForGood = true;
    clearTimeout(this.retryTimer);
    this.setConnection("closed", reason ? `Closed: ${reason}.` : "Closed.");
  }

  // The socket is gone: try again after a capped, jittered delay, for ever.
  lost(ws) {
    if (this.ws !== ws) return;
    this.ws = null;
    this.setConnection("reconnecting", "Reconnecting…");
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), reconnectDelay(this.attempt++));
  }

  // Give up on the socket now: a dead network may never finish closing it.
  drop() {
    const ws = this.ws;
    if (!ws) return;
    this.lost(ws);
    ws.close();
  }

  // Back online, or woken up: try now rather than at the end of the current delay.
  reconnectNow() {
    if (this.ws || this.closedForGood) return; // open, on its way, or closed for good
    clearTimeout(this.retryTimer);
    this.attempt = 0;
    this.connect();
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
    if (this.intercept?.(message)) return; // taken by static/cues.js (`sound`)
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
        reloadIfUpgraded(message.version, PAGE_VERSION);
        if (view) view.epoch = message.epoch;
        return;
      case "ack": {
        const item = this.outbox?.settle(message.id);
        if (item && item.type === "score" && this.mine) {
          // A repeat whose first ack never arrived still counts here, once.
          const reps = this.mine.acked(item);
          if (reps) {
            this.scored += reps;
            localStorage.setItem(this.scoredKey(), String(this.scored));
          }
        }
        this.renderScore();
        return;
      }
      case "leaderboard":
        if (!message.class) return;
        this.board = message;
        renderBoards(message, this.view?.segment?.index ?? null);
        this.renderScore();
        document.dispatchEvent(new CustomEvent("classroom:leaderboard", { detail: message }));
        return;
      case "presence":
        this.present = new Set(message.participants);
        markPresence(this.present);
        for (const el of document.querySelectorAll("[data-presence]")) {
          const n = message.participants.length;
          el.textContent = `${n} connected · ${message.displays} display${message.displays === 1 ? "" : "s"}`;
        }
        return;
      case "heartbeat":
        return;
      case "snapshot":
        reloadIfUpgraded(message.version, PAGE_VERSION);
        this.view = { ...message };
        // A segment made longer before this snapshot: at least what is left of it now.
        this.view.span_ms = Math.max(message.segment?.duration_ms ?? 0, message.remaining_ms ?? 0);
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
        if (message.phase === "finished" || message.phase === "cancelled") {
          view.ends_at = null;
          this.showResultsSoon();
        }
        // The lead-in counts down to the first segment's start, on every screen.
        if (message.phase === "countdown") view.starts_at = message.starts_at ?? null;
        view.phase = message.phase;
        break;
      case "segment":
        if (!view) return;
        if (message.reason === "extend" && view.segment?.index === message.segment.index) {
          // More time for this segment: its bar spans the longer segment, and a 3-2-1
          // on screen is void.
          const before = view.ends_at ? view.ends_at - message.at : view.remaining_ms;
          view.span_ms = this.spanMs() + Math.max(0, message.remaining_ms - (before ?? 0));
          this.clearCue();
        } else if (view.segment?.index !== message.segment.index) {
          view.span_ms = null;
        }
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
      case "corrected":
        if (this.mine && message.participant === Number(this.root.dataset.participant)) {
          this.mine.fix(message.segment, message.value, message.rounds, message.deleted);
          this.renderScore();
          this.showCue("The instructor corrected your score");
        }
        return;
      case "heart": // static/heart.js draws these
      case "hr":
      case "heart_profile":
      case "straps":
      case "claimed":
        this.heart(message);
        return;
      case "roster":
        for (const el of document.querySelectorAll("[data-participant-count]")) {
          el.textContent = String(message.count);
        }
        if (message.teams) renderJoined(message.teams);
        if (message.names) renderArrivals(message.names);
        return;
      case "error":
        if (typeof message.id === "string" && message.id.startsWith("h-")) { // static/heart.js's
          this.heart(message);
          return;
        }
        // "unavailable": the class couldn't take it just now (it is moving to another
        // server, or restarting). It stays queued, and the outbox sends it again.
        if (message.id && message.code !== "unavailable") {
          const item = this.outbox?.settle(message.id);
          if (item) {
            this.showCue(message.message); // an input the class refused: it won't be retried
            this.mine?.refused({ ...item, refusal: message.message });
            this.renderScore();
          }
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

  // Heart rates: static/heart.js is loaded when the first of them comes (most classes
  // have no straps), or at once on a phone (its strap form); messages keep their order.
  heart(message = null) {
    this.hearts ??= import("./heart.js").then((heart) => heart.start(this.root, this));
    if (message) this.hearts.then(() => document.dispatchEvent(new CustomEvent("classroom:heart", { detail: message })));
    return this.hearts;
  }

  // A wall display shows the class's results a little after it ends (it has no one to tap).
  showResultsSoon() {
    const url = this.root.dataset.resultsUrl;
    if (url && !this.resultsTimer) {
      this.resultsTimer = setTimeout(() => window.location.assign(url), RESULTS_AFTER_MS);
    }
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
    this.setText("target", showSegment && segment.target ? `Target: ${segment.target}` : "");
    let label = showSegment ? segment.label || `Segment ${segment.index + 1} of ${segment.count}` : "";
    if (view.phase === "paused") label = "Paused";
    this.setText("label", label);
    const remaining = this.remainingMs();
    this.setText("countdown", remaining === null ? "--:--" : formatRemaining(remaining));
    this.flipOnTheSecond(remaining);
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
    const bar = this.field("segment-progress"); // how far into the segment, 0 to 1
    if (bar) {
      const span = this.spanMs();
      const part = showSegment && remaining !== null && span > 0 ? 1 - remaining / span : 0;
      bar.style.transform = `scaleX(${Math.min(1, Math.max(0, part)).toFixed(4)})`;
    }
    const scoring = this.root.querySelector("[data-scoring]");
    if (scoring) {
      scoring.hidden = !(showSegment && segment.score_kind !== "none");
      const key = `${view.phase}:${segment?.index}:${segment?.score_kind}`;
      if (key !== this.scoringKey) {
        this.scoringKey = key;
        this.renderScore();
      }
    }
    const nextLine = this.field("next-line");
    if (nextLine) nextLine.hidden = !(showSegment && segment.next);
    this.setText("next", showSegment && segment.next ? segment.next : "");
  }

  // Change the digits on the second itself, not up to a tick later: screens side by
  // side flip together.
  flipOnTheSecond(remaining) {
    clearTimeout(this.flipTimer);
    if (remaining === null || remaining <= 0 || this.view?.phase === "paused") return;
    const wait = remaining - (Math.ceil(remaining / 1000) - 1) * 1000;
    if (wait <= TICK_MS) this.flipTimer = setTimeout(() => this.render(), wait + 1);
  }

  setText(name, text) {
    const el = this.field(name);
    if (el && el.textContent !== text) el.textContent = text;
  }

  // How long the current segment lasts, with the time the instructor added to it.
  spanMs() {
    const view = this.view;
    const planned = view?.segment?.duration_ms ?? 0;
    return Math.max(planned, view?.span_ms ?? 0);
  }

  clearCue() {
    clearTimeout(this.cueTimer);
    const el = this.field("cue");
    if (el) el.textContent = "";
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

// A class's screen. Sound, speech, vibration and wake lock (static/cues.js), and on a
// phone its inputs (static/phone.js), are loaded by the screens that use them only
// (the join page and the console's forms don't), and before the socket opens, so no
// message goes unheard.
const root = document.querySelector("[data-socket]");
if (root) {
  const phone = root.dataset.participant ? import("./phone.js") : Promise.resolve(null);
  Promise.all([import("./cues.js"), phone]).then(([cues, phoneModule]) => start(root, cues, phoneModule));
}

function start(root, cues, phone) {
  const screen = new ClassScreen(root, phone);
  window.classroomScreen = screen;
  cues.attachCues(screen);
  screen.connect();
  if (root.querySelector("[data-controls]")) bindShortcuts(root);
  document.addEventListener("htmx:afterSwap", () => screen.present && markPresence(screen.present));
  const initial = root.querySelector("[data-board-initial]");
  if (initial) {
    try {
      const message = JSON.parse(initial.textContent);
      screen.board = message;
      renderBoards(message);
    } catch (error) {
      console.warn("classroom: unreadable board", error);
    }
  }
  if (phone) phone.bindScoreInputs(root, screen);
  if (root.querySelector("[data-heart-form]")) screen.heart();
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

// The Content-Security-Policy (classroom/web/headers.py) takes no style attributes and no
// eval, so what the templates can't say as style="" or hx-on is done here.
// A timeline's segments are as wide as they are long (templates/fragments/routine_timeline.html).
// Times the server wrote in its own zone (a class's start), shown in the device's.
for (const el of document.querySelectorAll("time[data-local-time]")) {
  const at = new Date(el.getAttribute("datetime"));
  if (!Number.isNaN(at.getTime())) {
    el.textContent = at.toLocaleTimeString([], { hour: "numeric", minute: "2-digit" });
  }
}

function applyWidths(root) {
  const found = [...(root.querySelectorAll?.("[data-width]") ?? [])];
  if (root.matches?.("[data-width]")) found.push(root);
  for (const el of found) el.style.width = `${Number(el.dataset.width) || 0}%`;
}
applyWidths(document);
document.addEventListener("htmx:load", (event) => applyWidths(event.target));
// The shout-out form empties once it is sent.
document.addEventListener("htmx:afterRequest", (event) => {
  const elt = event.detail.elt;
  if (event.detail.successful && elt.matches?.("form[data-reset-on-success]")) elt.reset();
});
// The roster refreshes itself, but not under the instructor's fingers.
document.addEventListener("htmx:beforeRequest", (event) => {
  const elt = event.detail.elt;
  if (elt.matches?.("[data-hold-while-focused]") && elt.contains(document.activeElement)) {
    event.preventDefault();
  }
});

// static/wall.js (a wall display paired to a room; the console's time zones) only where
// it has work: every page keeps under its JavaScript budget (tests/browser/test_page_weight.py).
if (document.querySelector("[data-wall-target], input[data-time-zone]")) {
  import("./wall.js").then((wall) => wall.start());
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
