// A fake Web Bluetooth with one heart-rate strap, for page.add_init_script(path=...).
// Headless Chromium can't reach real hardware, so navigator.bluetooth is replaced by
// one whose requestDevice gives a "Polar H10 A1B2C3D4" with the Heart Rate service.
// isSecureContext is left alone (http://127.0.0.1 is secure). A test drives it
// through window.__fakeStrap:
//
//   emit([0x06, 72])   a Heart Rate Measurement notification, the bytes as the
//                      characteristic (0x2A37) lays them out; true if it was delivered
//                      (connected and subscribed)
//   drop(n = 0)        the strap goes out of range: gattserverdisconnected, and the
//                      next n gatt.connect() calls fail (failNext(n))
//   failNext(n)        the next n gatt.connect() calls reject with a NetworkError
//   cancelChooser()    the next requestDevice rejects as a cancelled chooser does
//   requests, connects, subscriptions, disconnects   calls so far of requestDevice,
//                      gatt.connect, startNotifications and gatt.disconnect
//   options            what requestDevice was last asked for
//   connected, notifying   the strap's side of the link
//
// window.__noBluetooth = true (set at any time before the check) makes
// navigator.bluetooth undefined again, as in Firefox or on an iPhone.
(() => {
  const HEART_RATE = ["heart_rate", 0x180d, "0000180d-0000-1000-8000-00805f9b34fb"];
  const MEASUREMENT = ["heart_rate_measurement", 0x2a37, "00002a37-0000-1000-8000-00805f9b34fb"];
  const error = (name, message) => new DOMException(message, name);
  const later = () => new Promise((resolve) => setTimeout(resolve, 0)); // GATT is never instant

  const strap = {
    requests: 0,
    connects: 0,
    subscriptions: 0,
    disconnects: 0,
    options: null,
    connected: false,
    notifying: false,
    failing: 0,
    cancelling: false,
    emit(bytes) {
      const view = new DataView(new ArrayBuffer(bytes.length));
      bytes.forEach((byte, i) => view.setUint8(i, byte));
      if (!strap.connected || !strap.notifying) return false;
      characteristic.value = view;
      characteristic.dispatchEvent(new Event("characteristicvaluechanged"));
      return true;
    },
    drop(failures = 0) {
      strap.failNext(failures);
      strap.lose();
    },
    failNext(n) {
      strap.failing = n;
    },
    cancelChooser() {
      strap.cancelling = true;
    },
    lose() {
      strap.connected = strap.notifying = false;
      device.dispatchEvent(new Event("gattserverdisconnected"));
    },
  };

  const characteristic = new EventTarget();
  Object.assign(characteristic, {
    uuid: MEASUREMENT[2],
    value: null,
    async startNotifications() {
      await later();
      if (!strap.connected) throw error("NetworkError", "GATT Server is disconnected.");
      strap.subscriptions += 1;
      strap.notifying = true;
      return characteristic;
    },
    async stopNotifications() {
      strap.notifying = false;
      return characteristic;
    },
  });

  const service = {
    uuid: HEART_RATE[2],
    isPrimary: true,
    async getCharacteristic(name) {
      await later();
      if (!strap.connected) throw error("NetworkError", "GATT Server is disconnected.");
      if (!MEASUREMENT.includes(name)) throw error("NotFoundError", "No Characteristics found.");
      return characteristic;
    },
  };

  const gatt = {
    get connected() {
      return strap.connected;
    },
    async connect() {
      strap.connects += 1;
      await later();
      if (strap.failing > 0) {
        strap.failing -= 1;
        throw error("NetworkError", "Connection failed for unknown reason.");
      }
      strap.connected = true;
      return gatt;
    },
    disconnect() {
      strap.disconnects += 1;
      if (strap.connected) strap.lose(); // Chrome fires gattserverdisconnected here too
    },
    async getPrimaryService(name) {
      await later();
      if (!strap.connected) throw error("NetworkError", "GATT Server is disconnected.");
      if (!HEART_RATE.includes(name)) throw error("NotFoundError", "No Services found.");
      return service;
    },
  };

  const device = new EventTarget();
  Object.assign(device, { id: "fake-strap-1", name: "Polar H10 A1B2C3D4", gatt });
  gatt.device = device;
  service.device = device;
  characteristic.service = service;

  const bluetooth = new EventTarget();
  Object.assign(bluetooth, {
    async getAvailability() {
      return true;
    },
    async requestDevice(options) {
      strap.requests += 1;
      strap.options = options;
      await later();
      if (strap.cancelling) {
        strap.cancelling = false;
        throw error("NotFoundError", "User cancelled the requestDevice() chooser.");
      }
      return device;
    },
  });

  Object.defineProperty(Navigator.prototype, "bluetooth", {
    configurable: true,
    enumerable: true,
    get: () => (window.__noBluetooth ? undefined : bluetooth),
  });
  window.__fakeStrap = strap;
})();
