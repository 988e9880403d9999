// Tandem's service worker: the app shell when the network is down, and
// ringing by Web Push when no page is open (docs/protocol.md, "Ringing a
// closed app"). Plain script, no build step; the server fills in
// SHELL_FILES, the files of this version of the app.
/* global self, clients, caches, indexedDB */

const VERSION = '__TANDEM_VERSION__';
const SHELL_FILES = __TANDEM_SHELL_FILES__;
const CACHE = `tandem-shell-${VERSION}`;

self.addEventListener('install', (ev) => {
  ev.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL_FILES)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (ev) => {
  ev.waitUntil((async () => {
    for (const k of await caches.keys()) if (k.startsWith('tandem-shell-') && k !== CACHE) await caches.delete(k);
    await self.clients.claim();
  })());
});

// The app's own files: from the network when it answers (a new version
// is used at once), from the cache when it does not. The API and the
// WebSocket are never cached.
self.addEventListener('fetch', (ev) => {
  const url = new URL(ev.request.url);
  if (ev.request.method !== 'GET' || url.origin !== self.location.origin || url.pathname.startsWith('/api/') ||
      url.pathname === '/ws' || url.pathname === '/metrics') return;
  ev.respondWith((async () => {
    try {
      const res = await fetch(ev.request);
      if (res.ok && SHELL_FILES.includes(url.pathname)) {
        const copy = res.clone();
        caches.open(CACHE).then((c) => c.put(url.pathname, copy));
      }
      return res;
    } catch (err) {
      const cached = await caches.match(ev.request.mode === 'navigate' ? '/' : url.pathname);
      if (cached) return cached;
      throw err;
    }
  })());
});

// ---- Ringing -----------------------------------------------------------

const ENDED_TEXT = {
  answered_elsewhere: (p) => (p.device ? `Answered on your ${p.device}` : 'Answered on another device'),
  declined: () => 'You declined the call',
  declined_elsewhere: () => 'Declined on another device',
  cancelled: (p) => `Missed call from ${p.from_name || p.from}`,
  no_answer: (p) => `Missed call from ${p.from_name || p.from}`,
  busy: (p) => `Missed call from ${p.from_name || p.from}`,
};

/** Shows what a push says: a call ringing, or how it stopped ringing. */
async function showPush(p) {
  const name = p.from_name || p.from;
  if (p.type === 'ring') {
    // Decline answers from here, with the device's credential; where the
    // page is open and can ring, the socket rings it too.
    await self.registration.showNotification(name, {
      body: p.video ? 'Video call' : 'Audio call',
      tag: p.call_id,
      renotify: true,
      requireInteraction: true,
      icon: '/icons/icon-192.png',
      data: p,
      actions: [{ action: 'answer', title: 'Answer' }, { action: 'decline', title: 'Decline' }],
    });
    return;
  }
  const text = (ENDED_TEXT[p.reason] || (() => 'The call ended'))(p);
  await self.registration.showNotification(name, {
    body: text, tag: p.call_id, renotify: false, requireInteraction: false, icon: '/icons/icon-192.png', data: p,
  });
}

self.addEventListener('push', (ev) => {
  let p = null;
  try {
    p = ev.data ? ev.data.json() : null;
  } catch {
    p = null;
  }
  if (!p || !p.call_id) return;
  ev.waitUntil(showPush(p));
});

/** The device's credential, which the page keeps here for Decline. */
function credential() {
  return new Promise((resolve) => {
    const open = indexedDB.open('tandem', 1);
    open.onupgradeneeded = () => open.result.createObjectStore('kv');
    open.onerror = () => resolve('');
    open.onsuccess = () => {
      const get = open.result.transaction('kv').objectStore('kv').get('credential');
      get.onsuccess = () => resolve(get.result || '');
      get.onerror = () => resolve('');
    };
  });
}

/** What a tap on a notification (or one of its buttons) does. */
async function act(action, p) {
  if (action === 'decline') {
    const cred = await credential();
    const res = await fetch('/api/v1/account/push/decline', {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ credential: cred, call_id: p.call_id }),
    }).catch(() => null);
    if (!res || !res.ok) {
      // Declining did not reach the server: open the call instead.
      await openApp(`/#ring=${encodeURIComponent(p.call_id)}`);
    }
    return;
  }
  const app = await appPage();
  if (p.type !== 'ring') {
    // A missed call, a request: the app, as it is.
    if (app) await app.focus();
    else await clients.openWindow('/');
    return;
  }
  if (app) {
    // The app is open (hidden): it answers or shows the call itself,
    // without a reload that would cut it off from the call.
    app.postMessage({ type: 'notification-action', action: action === 'answer' ? 'answer' : 'show', call_id: p.call_id });
    await app.focus();
    return;
  }
  // Answer opens straight into the call; a plain tap opens its ringing screen.
  await openApp(`/#${action === 'answer' ? 'answer' : 'ring'}=${encodeURIComponent(p.call_id)}`);
}

/** A window running the app (at /), if one is open. */
async function appPage() {
  const all = await clients.matchAll({ type: 'window', includeUncontrolled: true });
  return all.find((c) => new URL(c.url).origin === self.location.origin && new URL(c.url).pathname === '/') || null;
}

/** Opens the app at url: in a window of this origin it controls, or a new one. */
async function openApp(url) {
  const all = await clients.matchAll({ type: 'window', includeUncontrolled: true });
  for (const c of all) {
    if (new URL(c.url).origin === self.location.origin && 'focus' in c) {
      // navigate() works on a page this worker controls; one it does not
      // (opened before the worker) is left, and a new one opened.
      const moved = await c.navigate(url).catch(() => null);
      if (moved) return moved.focus();
    }
  }
  return clients.openWindow(url);
}

self.addEventListener('notificationclick', (ev) => {
  ev.notification.close();
  ev.waitUntil(act(ev.action, ev.notification.data || {}));
});

// A page (or a test driving one) may relay a click it stands in for.
self.addEventListener('message', (ev) => {
  const m = ev.data || {};
  if (m.type !== 'notification-click') return;
  ev.waitUntil((async () => {
    const ns = await self.registration.getNotifications({ tag: m.tag });
    for (const n of ns) n.close();
    await act(m.action || '', (ns[0] && ns[0].data) || { call_id: m.tag, type: 'ring' });
  })());
});
