// The phone's side of a class screen: its inputs, kept until the server acknowledges
// them (Outbox), what this phone has logged (MyScores), and the score inputs. Loaded
// by static/classroom.js on a participant's phone only.

const OUTBOX_PACE = 8; // queued inputs sent per second (the server takes 10 a second per person)
const OUTBOX_RETRY_MS = 5000; // an input unanswered this long is sent again
const COUNTED_KEPT = 3000;
const UNDO_KEPT = 50;
const ADDS_UP = new Set(["reps", "rounds_reps", "calories", "distance"]);

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
    this.sentAt = new Map();
    this.pacing = null;
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
    this.sentAt.set(message.id, Date.now());
    this.send(message);
    return message;
  }

  // Send everything still unanswered, a few a second: a long queue (a phone that was
  // offline for a while) must not trip the server's rate limits. Sending an input
  // twice is safe: the server counts each id once.
  flush() {
    clearTimeout(this.pacing);
    const waiting = [...this.items];
    const step = () => {
      for (const item of waiting.splice(0, OUTBOX_PACE)) {
        if (!this.items.includes(item)) continue; // answered meanwhile
        this.sentAt.set(item.id, Date.now());
        this.send(item);
      }
      if (waiting.length) this.pacing = setTimeout(step, 1000);
    };
    step();
  }

  // Anything sent a while ago and still unanswered (dropped by a rate limit, or lost
  // with a connection that looked open) goes again.
  retry(now = Date.now()) {
    if (this.items.some((item) => now - (this.sentAt.get(item.id) ?? 0) > OUTBOX_RETRY_MS)) {
      this.flush();
    }
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

// What this phone has logged, per segment, counted from the inputs the server
// acknowledged (each id once, even if its ack comes twice), kept in localStorage.
export class MyScores {
  constructor(key) {
    this.key = key;
    let saved = {};
    try {
      saved = JSON.parse(localStorage.getItem(key) || "{}") || {};
    } catch {
      saved = {};
    }
    this.segments = saved.segments || {};
    this.counted = new Set(saved.counted || []);
  }

  save() {
    const counted = [...this.counted].slice(-COUNTED_KEPT);
    this.counted = new Set(counted);
    localStorage.setItem(this.key, JSON.stringify({ segments: this.segments, counted }));
  }

  segment(index, kind = "") {
    const key = String(index);
    if (!this.segments[key]) {
      this.segments[key] = { kind, value: 0, rounds: 0, finished: false, estimate: null, stack: [], undos: {} };
    }
    return this.segments[key];
  }

  // An input has gone into the outbox: reps and rounds can be taken back, newest first.
  sent(item) {
    if (item.undo || (item.kind !== "reps" && item.kind !== "rounds_reps")) return;
    const state = this.segment(item.segment, item.kind);
    state.stack.push({ id: item.id, value: item.value || 0, rounds: item.rounds || 0 });
    if (state.stack.length > UNDO_KEPT) state.stack.shift();
    this.save();
  }

  canUndo(index) {
    return Boolean(this.segments[String(index)]?.stack.length);
  }

  // The latest input of a segment that can still be taken back (null: none), and
  // remember what the undo that takes it back is worth.
  takeBack(index, makeUndo) {
    const state = this.segments[String(index)];
    const last = state?.stack.pop();
    if (!last) return null;
    const undo = makeUndo(last.id);
    state.undos[undo.id] = { value: last.value, rounds: last.rounds };
    this.save();
    return undo;
  }

  // The server has stored an input: count it, once. Returns the change in reps.
  acked(item) {
    if (this.counted.has(item.id)) return 0;
    this.counted.add(item.id);
    const state = this.segment(item.segment, item.kind);
    let reps = 0;
    if (item.undo) {
      const undone = state.undos[item.id];
      if (undone) {
        state.value -= undone.value;
        state.rounds -= undone.rounds;
        delete state.undos[item.id];
        if (state.kind === "reps") reps = -undone.value;
      }
    } else if (item.kind === "load") {
      state.value = Math.max(state.value, item.value);
    } else if (item.kind === "effort") {
      state.value = item.value;
    } else if (item.kind === "time") {
      state.finished = true;
      state.finishStored = true;
    } else {
      state.value += item.value || 0;
      state.rounds += item.rounds || 0;
      if (item.kind === "reps") reps = item.value;
    }
    this.save();
    return reps;
  }

  // The class refused an input: it won't count.
  refused(item) {
    const state = this.segment(item.segment, item.kind);
    if (item.undo) delete state.undos[item.id];
    if (item.kind === "time" && !item.undo && !state.finishStored) {
      state.finished = /already finished/.test(item.refusal || "");
    }
    this.save();
  }

  // A segment's result as this phone knows it: acknowledged inputs plus those waiting.
  // The instructor corrected this phone's result for a segment: it replaces what the
  // phone counted (as on the boards), and inputs after it don't change it.
  fix(index, value, rounds, deleted) {
    const state = this.segment(index);
    state.fixed = deleted ? { value: 0, rounds: 0 } : { value, rounds };
    this.save();
  }

  result(index, kind, waiting) {
    const state = this.segment(index, kind);
    if (state.fixed) {
      const { value, rounds } = state.fixed;
      return { value, rounds, finished: state.finished, estimate: state.estimate, fixed: true };
    }
    let value = state.value;
    let rounds = state.rounds;
    for (const item of waiting) {
      if (item.segment !== index || this.counted.has(item.id)) continue;
      if (item.undo) {
        const undone = state.undos[item.id];
        if (undone) {
          value -= undone.value;
          rounds -= undone.rounds;
        }
      } else if (kind === "load") value = Math.max(value, item.value || 0);
      else if (kind === "effort") value = item.value;
      else if (ADDS_UP.has(kind)) {
        value += item.value || 0;
        rounds += item.rounds || 0;
      }
    }
    return { value, rounds, finished: state.finished, estimate: state.estimate };
  }
}

// The phone's score inputs (templates/fragments/score_inputs.html).
export function bindScoreInputs(root, screen) {
  const on = (selector, handler) => {
    for (const el of root.querySelectorAll(selector)) el.addEventListener("click", () => handler(el));
  };
  on("[data-score-button]", (button) => screen.score(Number(button.dataset.value || 1)));
  on("[data-undo]", () => screen.undo());
  on("[data-round-button]", () => screen.input({ rounds: 1, value: 0 }));
  on("[data-finish]", () => screen.finish());
  on("[data-rpe]", (button) => screen.input({ value: Number(button.dataset.rpe) }));
  on("[data-step]", (button) => {
    const input = document.getElementById(button.dataset.target);
    const next = (Number(input.value) || 0) + Number(button.dataset.step);
    input.value = String(Math.min(Number(input.max), Math.max(Number(input.min), next)));
  });
  const amount = (input) => {
    const value = Number(input.value);
    if (!Number.isInteger(value) || value < Number(input.min) || value > Number(input.max)) {
      screen.showCue(`Enter a whole number from ${input.min} to ${input.max}.`);
      input.focus();
      return null;
    }
    return value;
  };
  on("[data-log-reps]", () => {
    const value = amount(root.querySelector("#rr-reps"));
    if (value !== null) screen.input({ rounds: 0, value });
  });
  on("[data-log]", (button) => {
    const value = amount(document.getElementById(button.dataset.log));
    if (value !== null) screen.input({ value });
  });
  // The division is remembered per class; a beginner starts in the beginner division.
  const saved = localStorage.getItem(screen.divisionKey);
  const chosen = saved || (root.dataset.level === "beginner" ? "beginner" : "rx");
  for (const radio of root.querySelectorAll('[data-division] input[name="division"]')) {
    radio.checked = radio.value === chosen;
    radio.addEventListener("change", () => {
      if (radio.checked) localStorage.setItem(screen.divisionKey, radio.value);
    });
  }
}
