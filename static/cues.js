// Cues as beeps, speech and vibration, and the screen wake lock: see
// docs/running-a-class.md#sound-vibration-and-sleep. static/classroom.js calls attachCues.

const FRESH_MS = 3000; // a cue this late is old news
const QUEUE_MAX = 2; // utterances waiting behind the one being said
const KEYS = { wall: "classroom.sound", beep: "classroom.beep", vibrate: "classroom.vibrate" };
const TONES = {
  count: [[880, 150]],
  go: [[1320, 600]],
  cue: [[660, 120], [660, 120, 200]], // a cue that can't be spoken
};
const BUZZ = { count: [80], go: [300], cue: [120, 80, 120] };
const stored = (key, fallback) => localStorage.getItem(key) ?? fallback;

// The AudioContext is made on the first unlock(), once sound is on.
export class Beeper {
  async unlock() {
    const Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return false;
    this.ctx ??= new Context();
    if (this.ctx.state !== "running") await this.ctx.resume().catch(() => {}); // no gesture yet
    return this.ctx.state === "running";
  }

  play(name) {
    const ctx = this.ctx;
    if (ctx?.state !== "running") return;
    for (const [hz, ms, delay = 0] of TONES[name]) {
      const t = ctx.currentTime + delay / 1000;
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      osc.frequency.value = hz;
      gain.gain.setValueAtTime(0.4, t);
      gain.gain.exponentialRampToValueAtTime(0.001, t + ms / 1000);
      osc.connect(gain).connect(ctx.destination);
      osc.start(t);
      osc.stop(t + ms / 1000 + 0.05);
    }
  }
}

// One utterance at a time. A cue of the segment being talked about waits (QUEUE_MAX);
// one of a newer segment drops what waits and cuts the old utterance short; a cue
// that waited past FRESH_MS is dropped, never said late.
export class Speaker {
  constructor(synth, now, onRefused) {
    Object.assign(this, { synth, now, onRefused, queue: [], current: null, waits: 0 });
  }

  canSpeak = () => this.synth.getVoices().length > 0;

  say(text, segment, at) {
    this.queue = this.queue.filter((item) => item.segment === segment);
    this.queue.push({ text, segment, at });
    if (this.queue.length > QUEUE_MAX) this.queue.shift();
    const current = this.current;
    if (current && current.segment !== segment && !current.cut) {
      current.cut = true;
      this.synth.cancel(); // its "end" or "error" event follows; don't count on it
      clearTimeout(current.watchdog);
      current.watchdog = setTimeout(() => this.done(current.utterance), 300);
    }
    this.next();
  }

  stop() {
    this.queue = [];
    if (this.current) this.synth.cancel();
  }

  done(utterance) {
    if (this.current?.utterance !== utterance) return;
    clearTimeout(this.current.watchdog);
    this.current = null;
    this.next();
  }

  next() {
    clearTimeout(this.retry);
    if (this.current || !this.queue.length) return;
    if ((this.synth.speaking || this.synth.pending) && this.waits++ < 30) {
      this.retry = setTimeout(() => this.next(), 100); // still stopping after a cancel
      return;
    }
    if (this.waits > 30) this.synth.cancel();
    this.waits = 0;
    const item = this.queue.shift();
    if (this.now() - item.at > FRESH_MS) return this.next();
    const utterance = new SpeechSynthesisUtterance(item.text);
    utterance.lang = document.documentElement.lang || "en"; // the browser picks its voice
    utterance.onend = () => this.done(utterance);
    utterance.onerror = (event) => {
      if (event.error === "not-allowed") this.onRefused();
      this.done(utterance);
    };
    const watchdog = setTimeout(() => { // some engines never say they are done
      this.synth.cancel();
      this.done(utterance);
    }, 5000 + 150 * item.text.length);
    this.current = { ...item, utterance, watchdog };
    this.synth.speak(utterance);
  }
}

// The browser lets go of a wake lock when the page is hidden: ask again when it's back.
export class ScreenLock {
  constructor() {
    this.wanted = false;
    document.addEventListener("visibilitychange", () => this.update());
    window.addEventListener("pagehide", () => this.set(false));
  }

  set(wanted) {
    this.wanted = wanted;
    this.update();
  }

  async update() {
    if (!this.wanted) {
      const sentinel = this.sentinel;
      this.sentinel = null;
      return sentinel?.release().catch(() => {});
    }
    const lock = navigator.wakeLock;
    if (!lock || this.sentinel || this.asking || document.visibilityState !== "visible") return;
    this.asking = true;
    try {
      const sentinel = (this.sentinel = await lock.request("screen"));
      sentinel.addEventListener("release", () => {
        if (this.sentinel === sentinel) this.sentinel = null;
      });
      if (!this.wanted) this.update(); // the class ended while we asked
    } catch { /* refused (battery saver, policy): the screen may sleep */ }
    this.asking = false;
  }
}

// The wall's sound switch, and a "Click to enable sound" button if audio is refused.
function wallSound(cues) {
  const asked = new URL(location.href).searchParams.get("sound");
  if (asked === "on" || asked === "off") localStorage.setItem(KEYS.wall, asked);
  const hint = Object.assign(document.createElement("button"), {
    type: "button", className: "button sound-hint", textContent: "Click to enable sound", hidden: true,
  });
  document.body.append(hint);
  const state = (value) => { document.body.dataset.sound = value; };
  cues.refused = () => {
    state("refused");
    hint.hidden = false;
  };
  const set = async (on) => {
    cues.sound = on;
    state(on ? "on" : "off");
    hint.hidden = true;
    if (!on) return cues.speaker?.stop();
    cues.speaker?.canSpeak(); // some browsers load their voices on the first ask
    if (!(await cues.beeper.unlock()) && cues.sound) cues.refused();
  };
  const retry = () => document.body.dataset.sound === "refused" && set(true);
  document.addEventListener("click", retry);
  document.addEventListener("keydown", retry);
  cues.switchSound = (on) => {
    localStorage.setItem(KEYS.wall, on ? "on" : "off");
    set(on);
  };
  set(stored(KEYS.wall, "off") === "on");
}

// The phone's settings: vibrate (on unless switched off), beep (off unless switched on).
function phoneSettings(cues) {
  for (const box of document.querySelectorAll("[data-cue-setting]")) {
    const name = box.dataset.cueSetting;
    if (name === "vibrate" && !navigator.vibrate) {
      box.closest("label").hidden = true;
      continue;
    }
    const apply = () => {
      cues[name] = box.checked;
      if (name === "beep" && box.checked) cues.beeper.unlock();
    };
    box.checked = stored(KEYS[name], name === "vibrate" ? "on" : "off") === "on";
    box.addEventListener("change", () => {
      localStorage.setItem(KEYS[name], box.checked ? "on" : "off");
      apply();
    });
    apply();
  }
  // Audio starts only after a touch.
  document.addEventListener("pointerdown", () => cues.beep && cues.beeper.unlock(), { once: true });
}

// The console's "Wall sound on/off": a `sound` message; the ack says how many walls heard.
function consoleSound(screen, handlers) {
  const status = document.querySelector("[data-wall-sound-status]");
  const say = (text) => { if (status) status.textContent = text; };
  let asked = null;
  for (const button of document.querySelectorAll("[data-wall-sound-set]")) {
    button.addEventListener("click", () => {
      if (screen.ws?.readyState !== WebSocket.OPEN) return say("Not connected; try again.");
      asked = { id: `sound-${Date.now()}`, on: button.dataset.wallSoundSet === "on" };
      screen.send({ type: "sound", ...asked });
      say("Sending…");
    });
  }
  handlers.push((message) => {
    if (!asked || message.id !== asked.id) return;
    const n = message.displays;
    if (message.type === "error") say(message.message);
    else if (!n) say("No wall display is connected to this class right now.");
    else say(`Wall sound ${asked.on ? "on" : "off"}: sent to ${n} display${n === 1 ? "" : "s"}.`);
    asked = null;
  });
}

// Play what a class event asks for on this screen.
function play(cues, screen, message) {
  const now = screen.serverNow();
  if (now - (message.at ?? now) > FRESH_MS) return;
  let tone = null;
  let text = "";
  if (message.type === "cue") {
    const { kind, text: said } = message;
    if (kind === "countdown" || (kind === "lead_in" && /^\d$/.test(said))) tone = "count";
    else text = said;
  } else if (message.type === "shout") text = message.text;
  else if (message.reason === "time" && (message.type === "segment" || message.phase === "finished")) {
    tone = "go"; // the clock moved on: a segment starts, or the class ends
  }
  if (!tone && !text) return;
  if (cues.vibrate && navigator.vibrate) navigator.vibrate(BUZZ[tone || "cue"]);
  if (!(cues.wall ? cues.sound : cues.beep)) return;
  if (!text || !cues.speaker?.canSpeak()) return cues.beeper.play(tone || "cue");
  cues.speaker.say(text, screen.view?.segment?.index ?? -1, message.at ?? now);
}

// Hook a ClassScreen up to sound, vibration and the wake lock.
export function attachCues(screen) {
  const wall = document.body.classList.contains("display");
  const cues = { wall, beeper: new Beeper() };
  const handlers = [];
  if (wall) {
    if (window.speechSynthesis) {
      const now = () => screen.serverNow();
      cues.speaker = new Speaker(window.speechSynthesis, now, () => cues.refused());
    }
    wallSound(cues);
  } else if (screen.outbox) phoneSettings(cues);
  else consoleSound(screen, handlers);
  // Messages ClassScreen.receive doesn't know: `sound` is taken here.
  screen.intercept = (message) => {
    for (const handle of handlers) handle(message);
    if (message.type !== "sound") return false;
    if (wall) cues.switchSound(message.on === true);
    return true;
  };
  // The wall keeps awake from the lobby on; phones and the console while the class runs.
  const awake = new Set(["countdown", "running", "paused", ...(wall ? ["lobby"] : [])]);
  const lock = new ScreenLock();
  const follow = () => lock.set(awake.has(screen.view?.phase));
  document.addEventListener("classroom:message", (event) => {
    play(cues, screen, event.detail);
    follow();
  });
  follow();
}
