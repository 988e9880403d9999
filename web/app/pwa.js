// @ts-check
// The installable app: its service worker (the shell offline, ringing by
// Web Push), ringing this device when Tandem is closed, the install
// prompt, and opening into a call from a notification.
import { request } from '../api.js';
import { el, toast } from '../ui.js';
import { acceptIncoming } from './incoming.js';
import { S, errorText } from './state.js';

/** @type {ServiceWorkerRegistration | null} */
let registration = null;

/** Registers the service worker; harmless where there is none. */
export async function registerWorker() {
  if (!('serviceWorker' in navigator) || !window.isSecureContext) return;
  try {
    registration = await navigator.serviceWorker.register('/sw.js', { scope: '/' });
  } catch (err) {
    console.warn('tandem: service worker not registered', err);
  }
  wireInstall();
  wirePushToggle();
  // A notification of this page's own ring, acted on.
  navigator.serviceWorker.addEventListener('message', (ev) => {
    const m = ev.data || {};
    if (m.type !== 'notification-action' || !m.call_id) return;
    if (m.action === 'answer') {
      if (S.shownIncoming === m.call_id) acceptIncoming();
      else S.answerOnRing = m.call_id;
    }
  });
}

// ---- The credential the worker declines with -------------------------------

function db() {
  return new Promise((resolve, reject) => {
    const open = indexedDB.open('tandem', 1);
    open.onupgradeneeded = () => open.result.createObjectStore('kv');
    open.onsuccess = () => resolve(open.result);
    open.onerror = () => reject(open.error);
  });
}

/**
 * Keeps the device's credential where the service worker can read it
 * (it has no localStorage), so that Decline on a notification works with
 * no page open; '' removes it.
 */
export async function shareCredential(credential) {
  if (!('indexedDB' in window)) return;
  try {
    const d = /** @type {IDBDatabase} */ (await db());
    const tx = d.transaction('kv', 'readwrite');
    if (credential) tx.objectStore('kv').put(credential, 'credential');
    else tx.objectStore('kv').delete('credential');
  } catch {
    /* private browsing: Decline opens the app instead */
  }
}

// ---- Ringing when closed -----------------------------------------------------

function b64ToBytes(s) {
  const b64 = s.replace(/-/g, '+').replace(/_/g, '/');
  const bin = atob(b64 + '==='.slice((b64.length + 3) % 4));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

/** Whether this browser can ring a closed app at all. */
export function pushSupported() {
  return !!(registration && 'PushManager' in window && 'Notification' in window && S.info && S.info.push_key);
}

/**
 * Rings this device when Tandem is closed: asks to show notifications,
 * subscribes at the browser's push service, and gives the server the
 * subscription. Resolves false (with the reason shown) when it cannot.
 */
export async function enablePush() {
  if (!pushSupported() || !S.auth || !S.auth.credential) return false;
  const perm = await Notification.requestPermission();
  if (perm !== 'granted') {
    el.pushStatus.textContent = 'Notifications are blocked for this site: allow them in the browser\'s settings to ring here when Tandem is closed.';
    return false;
  }
  try {
    const sub = await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: b64ToBytes(S.info.push_key) });
    await request('/api/v1/account/push', { method: 'PUT', token: S.auth.token, body: { subscription: sub.toJSON() } });
    el.pushStatus.textContent = 'This device rings when Tandem is closed.';
    return true;
  } catch (err) {
    el.pushStatus.textContent = `This device cannot ring when Tandem is closed: ${errorText(err)}`;
    return false;
  }
}

/** Stops ringing this device when closed. */
export async function disablePush() {
  try {
    const sub = registration && (await registration.pushManager.getSubscription());
    if (sub) await sub.unsubscribe();
    if (S.auth) await request('/api/v1/account/push', { method: 'DELETE', token: S.auth.token });
  } catch {
    /* the server forgets it with the device anyway */
  }
  el.pushStatus.textContent = 'This device rings only while Tandem is open.';
}

/** Shows whether this device will ring when closed. */
export async function renderPush() {
  el.pushBox.hidden = !(S.auth && S.auth.credential && registration && S.info && S.info.push_key);
  if (el.pushBox.hidden) return;
  if (!pushSupported()) {
    el.pushToggle.disabled = true;
    el.pushStatus.textContent = isIOS() && !standalone()
      ? 'On an iPhone or iPad, add Tandem to the Home Screen (Share, then “Add to Home Screen”) to ring when it is closed.'
      : 'This browser cannot ring Tandem when it is closed.';
    return;
  }
  const sub = await registration.pushManager.getSubscription().catch(() => null);
  el.pushToggle.checked = !!sub && Notification.permission === 'granted';
  el.pushStatus.textContent = el.pushToggle.checked
    ? 'This device rings when Tandem is closed.'
    : 'This device rings only while Tandem is open.';
}

function wirePushToggle() {
  el.pushToggle.addEventListener('change', () => {
    (el.pushToggle.checked ? enablePush() : disablePush().then(() => false)).then((on) => {
      el.pushToggle.checked = on;
    });
  });
}

// ---- Ringing while hidden ------------------------------------------------

/**
 * A call ringing while the page is open but hidden (another tab, a
 * minimised window) also raises a notification, as a push would.
 * @param {import('../protocol.js').Incoming} inc
 * @param {string} name
 */
export function notifyHidden(inc, name) {
  if (document.visibilityState !== 'hidden' || !registration || !('Notification' in window) || Notification.permission !== 'granted') return;
  // renotify and actions are in Chrome and Edge, ignored elsewhere.
  const options = /** @type {any} */ ({
    body: inc.video ? 'Video call' : 'Audio call', tag: inc.call_id, renotify: true, requireInteraction: true,
    icon: '/icons/icon-192.png', data: { type: 'ring', call_id: inc.call_id, from: inc.from.user, from_name: name, video: inc.video },
    actions: [{ action: 'answer', title: 'Answer' }, { action: 'decline', title: 'Decline' }],
  });
  registration.showNotification(name, options).catch(() => {});
}

/**
 * Raises a plain notification while the page is hidden: something here
 * waits for the person (a request for screen help).
 */
export function notifyHiddenText(title, body, tag) {
  if (document.visibilityState !== 'hidden' || !registration || !('Notification' in window) || Notification.permission !== 'granted') return;
  registration.showNotification(title, { body, tag, icon: '/icons/icon-192.png', data: { type: 'note' } }).catch(() => {});
}

/** Closes a call's notification once it no longer rings here. */
export function closeNotification(callId) {
  if (!registration) return;
  registration.getNotifications({ tag: callId }).then((ns) => ns.forEach((n) => n.close())).catch(() => {});
}

// ---- Installing ----------------------------------------------------------

/** @type {any} */
let installPrompt = null;

function isIOS() {
  return /iPhone|iPad|iPod/.test(navigator.userAgent) || (/Macintosh/.test(navigator.userAgent) && navigator.maxTouchPoints > 1);
}

function standalone() {
  return window.matchMedia('(display-mode: standalone)').matches || /** @type {any} */ (navigator).standalone === true;
}

function wireInstall() {
  window.addEventListener('beforeinstallprompt', (ev) => {
    ev.preventDefault();
    installPrompt = ev;
    el.installApp.hidden = false;
  });
  el.installApp.addEventListener('click', async () => {
    if (!installPrompt) return;
    installPrompt.prompt();
    const { outcome } = await installPrompt.userChoice;
    if (outcome === 'accepted') toast('Tandem is installed: open it from your home screen or apps.');
    installPrompt = null;
    el.installApp.hidden = true;
  });
  if (isIOS() && !standalone()) {
    el.installHint.hidden = false;
    el.installHint.textContent = 'To ring here when Tandem is closed, add it to your Home Screen: tap Share, then “Add to Home Screen”.';
  }
  window.addEventListener('appinstalled', () => { el.installApp.hidden = true; });
}
