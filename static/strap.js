// The phone as the receiver of a Bluetooth heart-rate strap, through Web Bluetooth:
// the standard Heart Rate service (0x180D). Each Heart Rate Measurement notification
// (0x2A37) goes on as a hex string of its bytes, for the server to read; bpmOf reads
// just the bpm, to show a number before the server answers. After a drop (out of
// range, a flat battery) Strap reconnects by itself, without the chooser.

export const NOT_SECURE = "Heart-rate straps need a secure (https) address; ask the gym.";
export const NO_BLUETOOTH =
  "This browser can't reach Bluetooth straps (iPhones and Firefox can't); use the gym's receiver, or log your effort by hand.";
export const NO_LINK =
  "Couldn't connect to the strap; check that it is worn and near the phone, then pair it again.";
export const GAVE_UP =
  "Lost the strap and couldn't reach it again; check that it is worn and near the phone, then pair it again.";

const BACKOFF_MS = [1000, 2000, 4000, 8000]; // between reconnection attempts; the last repeats
const ATTEMPTS = 10; // reconnection attempts after a drop (about a minute), then "failed"
const UNNAMED = "Heart-rate strap";

// Whether this browser can pair a strap at all, and if not, one sentence saying why.
// Web Bluetooth exists only in secure contexts (https, or localhost), so check that first.
export function strapSupport() {
  if (!globalThis.isSecureContext) return { ok: false, reason: NOT_SECURE };
  if (!navigator.bluetooth) return { ok: false, reason: NO_BLUETOOTH };
  return { ok: true };
}

// A DataView's bytes as lowercase hex: "0648" for flags 0x06, 72 bpm.
export function hexOf(view) {
  let hex = "";
  for (let i = 0; i < view.byteLength; i++) hex += view.getUint8(i).toString(16).padStart(2, "0");
  return hex;
}

// The bpm of a Heart Rate Measurement in hex: bit 0 of the flags byte says whether it
// is a uint8 or a uint16 (little-endian). null for anything too short to hold one.
export function bpmOf(hex) {
  if (typeof hex !== "string" || !/^([0-9a-f]{2})+$/i.test(hex)) return null;
  const byte = (i) => Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  const wide = byte(0) & 1;
  if (hex.length < (wide ? 6 : 4)) return null;
  return wide ? byte(1) | (byte(2) << 8) : byte(1);
}

// One strap. onData(hex) gets each measurement; onState(state, detail) each change:
// "choosing", "connecting", "connected" (the device's name), "reconnecting" (the attempt,
// from 1), "disconnected" (by the user, or the chooser cancelled), "failed" (a sentence).
// backoffMs and attempts are for tests.
export class Strap {
  constructor({ onData, onState, backoffMs = BACKOFF_MS, attempts = ATTEMPTS }) {
    Object.assign(this, { onData, onState, backoffMs, attempts });
    this.device = null; // null: not paired, or given up; every async step checks it
    this.characteristic = null;
    this.timer = null;
    this.linking = null; // the device being connected: a drop meanwhile fails that attempt
  }

  // Show the browser's chooser and connect to the strap picked. Call it from a tap
  // (requestDevice needs a user gesture).
  async connect() {
    this.forget();
    this.onState("choosing");
    let device;
    try {
      device = await navigator.bluetooth.requestDevice({ filters: [{ services: ["heart_rate"] }] });
    } catch (error) {
      // NotFoundError: the chooser was cancelled (or nothing picked); not a failure.
      if (error?.name === "NotFoundError") this.onState("disconnected");
      else this.onState("failed", NO_LINK);
      return;
    }
    this.device = device;
    device.addEventListener("gattserverdisconnected", this.dropped);
    this.onState("connecting");
    if (await this.link(device)) this.onState("connected", device.name || UNNAMED);
    else if (this.device === device) this.stop("failed", NO_LINK);
  }

  // Stop for good: no reconnection until connect() again.
  disconnect() {
    this.stop("disconnected");
  }

  // Connect to the device's GATT server and subscribe to its measurements again (a
  // reconnection loses the subscription). True once subscribed and still connected.
  async link(device) {
    this.linking = device;
    try {
      const server = await device.gatt.connect();
      const service = await server.getPrimaryService("heart_rate");
      const characteristic = await service.getCharacteristic("heart_rate_measurement");
      await characteristic.startNotifications();
      if (this.device !== device || !device.gatt.connected) return false;
      this.characteristic?.removeEventListener("characteristicvaluechanged", this.measured);
      this.characteristic = characteristic;
      characteristic.addEventListener("characteristicvaluechanged", this.measured);
      return true;
    } catch {
      return false;
    } finally {
      if (this.linking === device) this.linking = null;
    }
  }

  measured = (event) => this.onData(hexOf(event.target.value));

  // The link was lost (not by forget()). An attempt under way sees it fail by itself.
  dropped = () => {
    if (!this.device || this.linking === this.device) return;
    clearTimeout(this.timer);
    this.reconnect(this.device, 1);
  };

  // Attempt `attempt` after a drop, after its backoff; the next one if it fails.
  reconnect(device, attempt) {
    if (attempt > this.attempts) {
      this.stop("failed", GAVE_UP);
      return;
    }
    this.onState("reconnecting", attempt);
    const wait = this.backoffMs[Math.min(attempt, this.backoffMs.length) - 1];
    this.timer = setTimeout(async () => {
      if (this.device !== device) return;
      if (await this.link(device)) this.onState("connected", device.name || UNNAMED);
      else if (this.device === device) this.reconnect(device, attempt + 1);
    }, wait);
  }

  // Let go of the device (no event), then say `state`.
  stop(state, detail) {
    this.forget();
    this.onState(state, detail);
  }

  forget() {
    const device = this.device;
    clearTimeout(this.timer);
    this.characteristic?.removeEventListener("characteristicvaluechanged", this.measured);
    this.device = this.characteristic = null;
    if (!device) return;
    device.removeEventListener("gattserverdisconnected", this.dropped);
    if (device.gatt.connected) device.gatt.disconnect();
  }
}
