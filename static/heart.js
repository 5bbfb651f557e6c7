// Heart rate on a class's screens. Loaded by static/classroom.js where a page has
// [data-heart] (the phone, the wall, the console).
//
// - The wall and the console draw `heart` messages: a tile per person with a strap
//   (name, % of max, zone by colour *and* number and pattern, effort points; the bpm
//   where the person allows it, or always on the console) and the teams' effort. The
//   console marks anyone held at 95 % of max or more for over a minute.
// - The phone asks for the person's age (or max) and their choice about the wall, then
//   connects a strap over Web Bluetooth (static/strap.js) and sends each notification
//   as it came; or, where the phone can't reach Bluetooth, lets the person claim a
//   strap the room's receiver hears. It shows its own bpm, zone and points, big.
// See docs/heart-rate.md.

const ZONE_NAMES = ["Resting", "Very light", "Light", "Moderate", "Hard", "Maximum"];
const STRAPS_EVERY_MS = 2000; // the receiver's straps, while the person chooses
const OWN_EVERY_MS = 2000; // a claimed strap's figures, asked of the server

function element(tag, className, text = "") {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== "") el.textContent = text;
  return el;
}

// The zone as a badge: its colour, its number and its pattern (never colour alone).
function zoneBadge(zone) {
  const badge = element("span", `zone-badge zone-${zone}`, String(zone));
  badge.title = `Zone ${zone}: ${ZONE_NAMES[zone] || ""}`;
  return badge;
}

function tile(person, forInstructor) {
  const li = element("li", `heart-tile zone-${person.zone}`);
  li.dataset.zone = String(person.zone);
  li.dataset.name = person.name;
  if (person.stale) li.dataset.stale = "true";
  const head = element("div", "heart-tile-head");
  head.append(zoneBadge(person.zone), element("span", "heart-tile-name", person.name));
  const percent = element("div", "heart-tile-percent", `${person.percent}%`);
  const foot = element("div", "heart-tile-foot");
  if (person.bpm !== null && person.bpm !== undefined) {
    foot.append(element("span", "heart-tile-bpm", `${person.bpm} bpm · `));
  }
  foot.append(element("span", "heart-tile-points", `${person.points} pts`));
  li.append(head, percent, foot);
  if (forInstructor && person.attention) {
    li.dataset.attention = "true";
    const minutes = Math.floor(person.high_s / 60);
    const seconds = String(person.high_s % 60).padStart(2, "0");
    const mark = element("p", "heart-attention", `⚠ ≥95% for ${minutes}:${seconds}: offer the modification`);
    mark.setAttribute("role", "status");
    li.append(mark);
  }
  return li;
}

// Draw a `heart` message into every [data-heart-tiles] and [data-heart-teams].
export function renderTiles(message) {
  for (const list of document.querySelectorAll("[data-heart-tiles]")) {
    const forInstructor = list.dataset.heartTiles === "instructor";
    const tiles = message.tiles || [];
    list.replaceChildren(...tiles.map((person) => tile(person, forInstructor)));
    list.dataset.count = String(tiles.length);
    // Fewer tiles are drawn bigger: the wall picks a density by how many there are.
    list.dataset.density = tiles.length <= 12 ? "few" : tiles.length <= 30 ? "some" : "many";
    const section = list.closest("[data-heart-section]");
    if (section) section.hidden = tiles.length === 0;
    const attention = tiles.filter((person) => person.attention).length;
    for (const el of document.querySelectorAll("[data-heart-attention-count]")) {
      el.textContent = attention ? `${attention} to watch` : "";
    }
  }
  for (const list of document.querySelectorAll("[data-heart-teams]")) {
    const teams = message.teams || [];
    list.replaceChildren(...teams.map((team, i) => {
      const li = element("li", "heart-team");
      li.append(element("span", "board-rank", String(i + 1)), element("span", "board-name", team.name),
        element("span", "board-value", `${team.per_member} pts each`),
        element("span", "heart-team-total", `${team.points} in all · ${team.members}`));
      return li;
    }));
    list.hidden = teams.length === 0;
  }
}

// -- the phone -----------------------------------------------------------------------

class PhoneHeart {
  constructor(root, screen, strapModule) {
    this.root = root;
    this.screen = screen;
    this.straps = strapModule;
    this.n = 0;
    this.strap = null;
    this.claimed = null;
    this.profiled = false;
    this.listing = null;
    this.owning = null;
    this.el = (name) => root.querySelector(`[data-heart-${name}]`);
    const support = strapModule.strapSupport();
    const bluetooth = this.el("bluetooth");
    if (!support.ok) {
      bluetooth.hidden = true;
      const note = this.el("unsupported");
      note.textContent = support.reason;
      note.hidden = false;
    }
    this.el("form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.connect(event.submitter?.dataset.via || "bluetooth");
    });
    this.el("disconnect").addEventListener("click", () => this.disconnect());
    document.addEventListener("classroom:heart", (event) => this.heard(event.detail));
  }

  id(kind) {
    this.n += 1;
    return `h-${kind}-${this.n}`;
  }

  profile() {
    const form = this.el("form");
    const age = form.elements.age.value.trim();
    const max = form.elements.max_hr.value.trim();
    const message = { type: "heart_profile", id: this.id("p"), show_bpm: form.elements.show_bpm.checked };
    if (max) message.max_hr = Number(max);
    else if (age) message.age = Number(age);
    return message;
  }

  // The person chose: their profile first, then the strap (a user gesture opens the
  // Bluetooth chooser, so it is asked for at once, in the same tap).
  connect(via) {
    this.status("");
    this.screen.send(this.profile());
    if (via === "receiver") {
      this.listStraps();
      return;
    }
    this.strap?.disconnect();
    this.strap = new this.straps.Strap({
      onData: (hex) => this.screen.send({ type: "hr", id: this.id("s"), data: hex }),
      onState: (state, detail) => this.strapState(state, detail),
    });
    this.strap.connect();
  }

  disconnect() {
    this.strap?.disconnect();
    this.strap = null;
    if (this.claimed) this.screen.send({ type: "claim_strap", id: this.id("c"), strap: null });
    this.claimed = null;
    clearInterval(this.owning);
    clearInterval(this.listing);
    this.el("now").hidden = true;
    this.el("disconnect").hidden = true;
    this.status("Strap disconnected.");
  }

  strapState(state, detail) {
    const words = {
      choosing: "Choose your strap…",
      connecting: "Connecting…",
      connected: `Connected to ${detail || "your strap"}.`,
      reconnecting: `Strap lost; reconnecting (try ${detail})…`,
      disconnected: "",
      failed: detail || "The strap couldn't be reached.",
    };
    this.status(words[state] ?? "");
    this.root.dataset.strap = state;
    if (state === "connected") this.root.querySelector(".heart-setup").open = false;
    this.el("disconnect").hidden = !(state === "connected" || state === "reconnecting");
  }

  // The straps the room's receiver hears, to claim one (for phones without Bluetooth).
  listStraps() {
    clearInterval(this.listing);
    const ask = () => this.screen.send({ type: "straps", id: this.id("l") });
    ask();
    this.listing = setInterval(ask, STRAPS_EVERY_MS);
  }

  claim(strap) {
    this.screen.send({ type: "claim_strap", id: this.id("c"), strap });
  }

  heard(message) {
    if (message.type === "hr" || message.type === "heart_profile") return this.show(message);
    if (message.type === "straps") return this.showStraps(message);
    if (message.type === "claimed") {
      this.claimed = message.strap;
      clearInterval(this.listing);
      this.el("receiver-list").replaceChildren();
      this.status(`Strap ${message.strap} is yours for this class.`);
      this.root.querySelector(".heart-setup").open = false;
      this.el("disconnect").hidden = false;
      clearInterval(this.owning);
      this.owning = setInterval(() => this.screen.send({ type: "my_heart", id: this.id("o") }), OWN_EVERY_MS);
      return;
    }
    if (message.type === "error") this.status(message.message);
  }

  showStraps(message) {
    const list = this.el("receiver-list");
    if (!message.straps.length) {
      list.replaceChildren(element("li", "muted", "The room's receiver hears no strap yet: is yours on, and wet?"));
      return;
    }
    list.replaceChildren(...message.straps.map((strap) => {
      const li = element("li", "heart-strap");
      const button = element("button", "button", `${strap.strap} · ${strap.bpm} bpm`);
      button.type = "button";
      button.dataset.strap = strap.strap;
      button.addEventListener("click", () => this.claim(strap.strap));
      li.append(button);
      return li;
    }));
  }

  show(own) {
    if (own.type === "heart_profile") {
      this.el("max").textContent = `Max ${own.max_hr} bpm (${{ entered: "yours", age: "from your age", raised: "raised as you trained", assumed: "assumed" }[own.max_from] || own.max_from})`;
      if (!own.bpm) return;
    }
    this.el("now").hidden = false;
    this.el("bpm").textContent = own.bpm ? String(own.bpm) : "--";
    this.el("percent").textContent = `${own.percent}%`;
    const zone = this.el("zone");
    zone.replaceChildren(zoneBadge(own.zone), ` ${ZONE_NAMES[own.zone] || ""}`);
    this.el("now").dataset.zone = String(own.zone);
    this.el("points").textContent = String(Math.floor(own.points));
    if (own.raised) {
      this.screen.showCue?.(`Your max heart rate is now ${own.raised} bpm`);
      this.el("max").textContent = `Max ${own.raised} bpm (raised as you trained)`;
    }
  }

  status(text) {
    this.el("status").textContent = text;
  }
}

export function start(root, screen) {
  document.addEventListener("classroom:heart", (event) => {
    if (event.detail.type === "heart") renderTiles(event.detail);
  });
  if (root.querySelector("[data-heart-form]")) {
    import("./strap.js").then((strapModule) => new PhoneHeart(root, screen, strapModule));
  }
}
