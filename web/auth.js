// @ts-check
// Credentials kept per tab (sessionStorage) with localStorage as the default
// for new tabs. A Web Lock per identity stops a new tab from silently reusing
// an identity another tab of the same profile is using (which would make the
// server replace that tab's session).

const KEY = 'tandem.auth';
const NAMES = 'tandem.names';

function read(storage, key) {
  try {
    const raw = storage.getItem(key);
    return raw ? JSON.parse(raw) : null;
  } catch {
    return null;
  }
}

function write(storage, key, value) {
  try {
    if (value === null) storage.removeItem(key);
    else storage.setItem(key, JSON.stringify(value));
  } catch {
    /* storage may be disabled; stay signed in for this page only */
  }
}

/** Decodes the JWT payload (no verification: only for display and expiry). */
export function tokenClaims(token) {
  try {
    const part = token.split('.')[1];
    const b64 = part.replace(/-/g, '+').replace(/_/g, '/');
    const json = decodeURIComponent(
      Array.from(atob(b64 + '==='.slice((b64.length + 3) % 4)), (c) => '%' + c.charCodeAt(0).toString(16).padStart(2, '0')).join(''),
    );
    return JSON.parse(json);
  } catch {
    return {};
  }
}

export function tokenExpired(token) {
  const { exp } = tokenClaims(token);
  return typeof exp === 'number' && exp * 1000 <= Date.now();
}

/** The identity a token names, as {token, user, device}. */
export function authFromToken(token) {
  const claims = tokenClaims(token);
  return { token, user: claims.sub || '', device: claims.dev || '' };
}

/** Whether two credentials are the same user on the same device. */
export function sameIdentity(a, b) {
  return !!a.user && a.user === b.user && a.device === b.device;
}

/** The stored credentials for this tab: {token, user, device, source}. */
export function loadAuth() {
  const own = read(sessionStorage, KEY);
  if (own && own.token) return { ...own, source: 'tab' };
  const shared = read(localStorage, KEY);
  if (shared && shared.token) return { ...shared, source: 'default' };
  return null;
}

export function saveAuth(auth) {
  const value = { token: auth.token, user: auth.user, device: auth.device };
  // A device signed in with an account keeps its credential, to get fresh tokens.
  if (auth.credential) Object.assign(value, { credential: auth.credential, name: auth.name || '', deviceName: auth.deviceName || '' });
  write(sessionStorage, KEY, value);
  write(localStorage, KEY, value);
  saveNames(auth.user, auth.device);
}

export function clearAuth(token) {
  write(sessionStorage, KEY, null);
  const shared = read(localStorage, KEY);
  if (shared && (!token || shared.token === token)) write(localStorage, KEY, null);
}

export function loadNames() {
  return read(sessionStorage, NAMES) || read(localStorage, NAMES) || {};
}

export function saveNames(user, device) {
  write(sessionStorage, NAMES, { user, device });
  write(localStorage, NAMES, { user, device });
}

/**
 * A name for this device, from its platform and form factor: what a person
 * would call it among their others ("iphone", "android-tablet", "mac",
 * "windows-pc"), not the same word for every computer. The user can change
 * it at sign-in; the name they chose last in this browser is kept.
 */
/** @param {Navigator & {userAgentData?: {platform?: string, mobile?: boolean}}} [nav] */
export function defaultDeviceName(nav = navigator) {
  const ua = (nav && nav.userAgent) || '';
  const data = nav && nav.userAgentData;
  const platform = String((data && data.platform) || (nav && nav.platform) || '');
  const touch = ((nav && nav.maxTouchPoints) || 0) > 1;
  if (/iPhone|iPod/.test(ua)) return 'iphone';
  // iPadOS asks for desktop sites: a "Mac" with a touch screen is an iPad.
  if (/iPad/.test(ua) || (/Macintosh/.test(ua) && touch)) return 'ipad';
  if (/Android/i.test(ua) || /Android/i.test(platform)) {
    const mobile = data && typeof data.mobile === 'boolean' ? data.mobile : /Mobile/i.test(ua);
    return mobile ? 'android-phone' : 'android-tablet';
  }
  if (/CrOS/.test(ua) || /Chrome OS/i.test(platform)) return 'chromebook';
  if (/Mac/i.test(platform) || /Macintosh/.test(ua)) return 'mac';
  if (/Win/i.test(platform) || /Windows/.test(ua)) return 'windows-pc';
  if (/Linux|X11/i.test(platform) || /Linux|X11/.test(ua)) return 'linux-pc';
  if (/Mobi/i.test(ua)) return 'phone';
  return 'browser';
}

/** Ids are 1–128 bytes of printable UTF-8 without spaces. */
export function normalizeId(s) {
  return String(s || '').trim().replace(/\s+/g, '-');
}

export function validId(s) {
  if (!s) return false;
  if (new TextEncoder().encode(s).length > 128) return false;
  // eslint-disable-next-line no-control-regex
  return !/[\s\u0000-\u001f\u007f-\u009f]/.test(s);
}

let heldLock = null; // {name, release}

/**
 * Holds a Web Lock for user/device while this tab uses that identity.
 * With steal=false it returns false when another tab already holds it.
 */
export async function claimIdentity(user, device, { steal = false } = {}) {
  releaseIdentity();
  const locks = navigator.locks;
  if (!locks || typeof locks.request !== 'function') return true;
  const name = `tandem:identity:${user}/${device}`;
  return new Promise((resolve) => {
    let settled = false;
    const opts = steal ? { steal: true } : { ifAvailable: true };
    locks
      .request(name, opts, (lock) => {
        if (!lock) {
          settled = true;
          resolve(false);
          return null;
        }
        return new Promise((release) => {
          heldLock = { name, release };
          settled = true;
          resolve(true);
        });
      })
      .catch(() => {
        // Stolen by another tab, or locks unavailable: not fatal.
        if (heldLock && heldLock.name === name) heldLock = null;
        if (!settled) resolve(true);
      });
  });
}

export function releaseIdentity() {
  if (heldLock) {
    const { release } = heldLock;
    heldLock = null;
    release();
  }
}
