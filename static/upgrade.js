// A page open since before a server upgrade reloads itself when a snapshot or resumed
// message names other assets than its own (docs/protocol.md, "Upgrades"). A phone's
// waiting inputs are in localStorage: the new page sends them.

const KEY = "classroom.reloadedFor";
let reloading = false;

export const versionOf = (url) => new URL(url).searchParams.get("v") || "";

function remembered(version) {
  try {
    if (version === undefined) return sessionStorage.getItem(KEY);
    sessionStorage.setItem(KEY, version);
  } catch {
    return null; // no storage: at worst one reload per new version and page
  }
}

// Once per new version (a proxy serving the old page must not make it loop), and not
// while someone is typing in a field. True if a reload is under way.
export function reloadIfUpgraded(server, own) {
  if (!server || !own || server === own || remembered() === server) return false;
  if (reloading) return true;
  reloading = true;
  const attempt = () => {
    if (document.activeElement?.matches?.("input, textarea, select")) return setTimeout(attempt, 2000);
    remembered(server);
    location.reload();
  };
  attempt();
  return true;
}
