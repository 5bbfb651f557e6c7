// A wall display paired to a room follows it (classroom/web/pairing.py): every few
// seconds it asks /display/state what it should show (its "target": a pairing code,
// a class, a class's results, the room's welcome screen) and, when that differs from
// what this page shows, loads /display again. Nobody has to touch it.
//
// Also: the room's welcome clock, and the console's time-zone fields (the open-class
// form's scheduled start is read in the console's own time zone).

const POLL_MS = 2500;
const JITTER_MS = 1000; // displays don't all ask at once
const BACKOFF_CAP_MS = 5000; // while the server is away, ask every 2.5-5 s
const RESULTS_GRACE_MS = 12_000; // a class's own page moves on to its results by itself
const MOVE_RETRY_MS = 15_000; // a page load that got nowhere is tried again

function fillTimeZones() {
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  for (const input of document.querySelectorAll("input[data-time-zone]")) input.value = zone;
}

const hhmm = { hour: "numeric", minute: "2-digit" };

function showTime(el, at, today) {
  const sameDay = at.toDateString() === today.toDateString();
  const options = sameDay ? hhmm : { weekday: "short", day: "numeric", month: "short", ...hhmm };
  const text = at.toLocaleString([], options);
  if (el.textContent !== text) el.textContent = text;
}

// Whether the page should wait before moving from `shown` to `target`: a class that has
// just ended first shows "finished" on its own page, then moves on to its results.
function waitsForResults(shown, target) {
  return shown.startsWith("class:") && target === `results:${shown.slice("class:".length)}`;
}

function follow(marker) {
  const shown = marker.dataset.wallTarget;
  const version = marker.dataset.wallVersion || "";
  let failures = 0;
  let offsetMs = 0;
  let mismatchSince = null;
  const tick = () => {
    const at = new Date(Date.now() + offsetMs);
    for (const el of document.querySelectorAll("[data-wall-clock]")) showTime(el, at, at);
    for (const el of document.querySelectorAll("[data-wall-time]")) {
      showTime(el, new Date(el.getAttribute("datetime")), at);
    }
  };
  const poll = async () => {
    let delay = POLL_MS + Math.random() * JITTER_MS;
    try {
      const state = await fetchState();
      failures = 0;
      if (typeof state.server_now === "number") offsetMs = state.server_now - Date.now();
      if (state.target === shown) mismatchSince = null;
      const upgraded = state.version && version && state.version !== version;
      let moving = state.target !== shown || upgraded;
      if (moving && !upgraded && waitsForResults(shown, state.target)) {
        mismatchSince ??= Date.now();
        moving = Date.now() - mismatchSince >= RESULTS_GRACE_MS;
      }
      if (moving) {
        reload();
        delay = MOVE_RETRY_MS;
      }
    } catch {
      failures += 1; // the server is away: keep showing what we have, ask less often
      delay = Math.min(BACKOFF_CAP_MS, POLL_MS * 2 ** failures) * (0.5 + Math.random() / 2);
    }
    setTimeout(poll, delay);
  };
  tick();
  setInterval(tick, 1000);
  setTimeout(poll, POLL_MS * Math.random());
}

async function fetchState() {
  const response = await fetch("/display/state", { cache: "no-store", credentials: "same-origin" });
  if (!response.ok) throw new Error(`state: ${response.status}`);
  return response.json();
}

function reload() {
  // Keep a kiosk's settings in the address (e.g. ?sound=on) when it is /display itself.
  location.replace(`/display${location.pathname === "/display" ? location.search : ""}`);
}

export function start() {
  fillTimeZones();
  const marker = document.querySelector("[data-wall-target]");
  if (marker) follow(marker);
}
