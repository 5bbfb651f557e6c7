// Stand-ins for what headless Chromium can't do for real: voices to speak with,
// audio output, a vibration motor, a wake lock we can watch, and a page going to
// the background. Each records its calls in window.__calls, with Date.now() as `t`.
// Options come from window.__stub (set by an init script that runs first):
//   voices (true): whether getVoices() has a voice; speechMs (1500): how long an
//   utterance takes; audioBlocked (false): the autoplay policy refuses to start
//   audio without a user gesture.
(() => {
  const options = { voices: true, speechMs: 1500, audioBlocked: false, ...(window.__stub || {}) };
  const calls = (window.__calls = []);
  const record = (type, fields = {}) => calls.push({ type, t: Date.now(), ...fields });

  // speechSynthesis: speaks for speechMs, then "end"; cancel() stops at once and the
  // cut utterance gets an "interrupted" error, as in Chromium.
  class Utterance {
    constructor(text) {
      this.text = text;
      this.voice = null;
      this.lang = "";
      this.onend = null;
      this.onerror = null;
    }
  }
  const voice = { name: "Test voice", lang: "en-GB", default: true, localService: true, voiceURI: "test" };
  const synth = {
    speaking: false,
    pending: false,
    current: null,
    timer: null,
    getVoices: () => (options.voices ? [voice] : []),
    speak(utterance) {
      record("speak", { text: utterance.text, overlapping: this.speaking, lang: utterance.lang });
      this.speaking = true;
      this.current = utterance;
      this.timer = setTimeout(() => {
        this.speaking = false;
        this.current = null;
        utterance.onend?.({});
      }, options.speechMs);
    },
    cancel() {
      record("cancel", { speaking: this.speaking });
      const utterance = this.current;
      if (!utterance) return;
      clearTimeout(this.timer);
      this.speaking = false;
      this.current = null;
      setTimeout(() => utterance.onerror?.({ error: "interrupted" }), 0);
    },
    addEventListener() {},
    removeEventListener() {},
  };
  Object.defineProperty(window, "speechSynthesis", { value: synth, configurable: true });
  window.SpeechSynthesisUtterance = Utterance;

  // A user gesture, as the autoplay policy counts it: a real click, tap or key press in
  // the last 5 s (not navigator.userActivation: Playwright's evaluate() sets that).
  let gestureAt = -Infinity;
  for (const type of ["pointerdown", "keydown", "click"]) {
    window.addEventListener(type, (event) => event.isTrusted && (gestureAt = Date.now()), true);
  }

  // WebAudio: every oscillator started is a tone, recorded with its frequency.
  class FakeAudioContext {
    constructor() {
      record("audio_context");
      this.state = options.audioBlocked ? "suspended" : "running";
      this.currentTime = 0;
      this.destination = {};
    }
    async resume() {
      const allowed = !options.audioBlocked || Date.now() - gestureAt < 5000;
      record("resume", { allowed });
      if (allowed) this.state = "running";
    }
    createOscillator() {
      const osc = {
        frequency: { value: 440 },
        connect: (node) => node,
        start: () => record("tone", { hz: osc.frequency.value }),
        stop() {},
      };
      return osc;
    }
    createGain() {
      return { gain: { setValueAtTime() {}, exponentialRampToValueAtTime() {} }, connect: (node) => node };
    }
    async close() {
      this.state = "closed";
    }
  }
  window.AudioContext = FakeAudioContext;

  Object.defineProperty(Navigator.prototype, "vibrate", {
    value: (pattern) => {
      record("vibrate", { pattern });
      return true;
    },
    configurable: true,
  });

  // The wake lock, and the page's visibility: hiding the page releases every lock,
  // as browsers do; window.__setHidden(true|false) plays the page going away and back.
  const held = new Set();
  let hidden = false;
  const wakeLock = {
    async request(kind) {
      record("wake_lock", { kind, visible: !hidden });
      if (hidden) throw new DOMException("The page is not visible", "NotAllowedError");
      const listeners = [];
      const sentinel = {
        type: kind,
        released: false,
        addEventListener: (name, listener) => name === "release" && listeners.push(listener),
        async release() {
          if (sentinel.released) return;
          sentinel.released = true;
          held.delete(sentinel);
          record("wake_release", { by: hidden ? "browser" : "page" });
          for (const listener of listeners) listener();
        },
      };
      held.add(sentinel);
      return sentinel;
    },
  };
  Object.defineProperty(Navigator.prototype, "wakeLock", { get: () => wakeLock, configurable: true });
  Object.defineProperty(Document.prototype, "visibilityState", {
    get: () => (hidden ? "hidden" : "visible"),
    configurable: true,
  });
  Object.defineProperty(Document.prototype, "hidden", { get: () => hidden, configurable: true });
  window.__setHidden = (value) => {
    hidden = value;
    if (hidden) for (const sentinel of [...held]) sentinel.release();
    document.dispatchEvent(new Event("visibilitychange"));
  };
  window.__wakeLocksHeld = () => held.size;

  // What the page's aria-live regions say, as a screen reader would hear it.
  new MutationObserver((mutations) => {
    for (const mutation of mutations) {
      const node = mutation.target.nodeType === 1 ? mutation.target : mutation.target.parentElement;
      const region = node?.closest?.("[aria-live]");
      const text = region?.textContent.trim();
      if (text) record("live", { text, region: region.dataset.field || region.className });
    }
  }).observe(document, { subtree: true, childList: true, characterData: true });
})();
