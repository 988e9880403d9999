// @ts-check
// Built-in accounts on the page: joining from an invite link, signing in
// with a passkey, adding a device by its code, the person's people and
// devices, and an access token kept fresh from the device's credential.
import * as acct from '../account.js';
import { saveAuth, defaultDeviceName } from '../auth.js';
import { el, showScreen, makeAvatar } from '../ui.js';
import { placeCall } from './outgoing.js';
import { renderPush } from './pwa.js';
import { signIn, setFormError } from './signin.js';
import { S, errorText, setState } from './state.js';

/**
 * Reads key=value from the page's fragment and takes it out of the
 * address bar (a secret stays out of history and bookmarks).
 * @param {string} key
 */
export function takeFragment(key) {
  const params = new URLSearchParams(location.hash.replace(/^#/, ''));
  const value = params.get(key);
  if (!value) return null;
  params.delete(key);
  const rest = params.toString();
  try {
    history.replaceState(null, '', location.pathname + location.search + (rest ? '#' + rest : ''));
  } catch {
    /* ignore */
  }
  return value;
}

/** Whether this server has built-in accounts. */
export function accountsOn() {
  return !!(S.info && S.info.accounts);
}

/**
 * Starts the page signed in as r (a sign-in just made, or a fresh token),
 * keeping the device's credential.
 * @param {acct.SignedIn} r
 * @param {string} [credential] the credential r came from, when r has none
 */
export function signInAs(r, credential) {
  return signIn({ token: r.token, user: r.user, device: r.device, credential: r.credential || credential, name: r.name,
    deviceName: r.device_name }, { steal: true });
}

// ---- Joining from an invite link ------------------------------------------

let joinInvite = '';

/** Shows the page an invite link opens. */
export async function showJoin(invite) {
  joinInvite = invite;
  setState('signed-out');
  el.me.hidden = true;
  showScreen('join');
  el.joinDevice.value = el.joinDevice.value || defaultDeviceName();
  setFormError(el.joinError, '');
  el.joinSubmit.disabled = true;
  try {
    const info = await acct.inviteInfo(invite);
    el.joinText.textContent = info.owner
      ? 'Set up this server: you become its owner, and can invite your family.'
      : info.inviter
        ? `${info.inviter} invited you to call each other on Tandem.`
        : 'You are invited to Tandem.';
    if (info.for && !el.joinName.value) el.joinName.value = info.for;
    el.joinSubmit.disabled = false;
    setTimeout(() => el.joinName.focus(), 0);
  } catch (err) {
    el.joinText.textContent = '';
    setFormError(el.joinError, errorText(err));
  }
}

async function onJoinSubmit(ev) {
  ev.preventDefault();
  const name = el.joinName.value.trim();
  if (!name) {
    setFormError(el.joinError, 'Enter your name.');
    el.joinName.focus();
    return;
  }
  if (!acct.passkeysSupported()) {
    setFormError(el.joinError, 'This browser cannot make passkeys. Open the link in a current browser, or add this device from another one instead.');
    return;
  }
  setFormError(el.joinError, '');
  el.joinSubmit.disabled = true;
  el.joinSubmit.textContent = 'Waiting for your passkey…';
  try {
    const r = await acct.registerWithInvite(joinInvite, name, el.joinDevice.value.trim() || defaultDeviceName());
    joinInvite = '';
    await signInAs(r);
  } catch (err) {
    setFormError(el.joinError, errorText(err));
  } finally {
    el.joinSubmit.disabled = false;
    el.joinSubmit.textContent = 'Create my passkey';
  }
}

// ---- Signing in with a passkey, or by another device ----------------------

/** Shows the built-in ways to sign in on the signed-out screen. */
export function showAccountSignIn() {
  el.accountSignin.hidden = !accountsOn();
  el.oidcSignin.hidden = !(accountsOn() && S.info.oidc);
  if (S.info && S.info.oidc) el.oidcSignin.textContent = `Sign in with ${S.info.oidc}`;
  if (accountsOn()) {
    el.notokenText.textContent = 'Sign in with the passkey you made when you joined, or add this device from one where you are signed in.';
  }
}

async function onPasskeySignIn() {
  setFormError(el.accountError, '');
  el.passkeySignin.disabled = true;
  try {
    await signInAs(await acct.signInWithPasskey(defaultDeviceName()));
  } catch (err) {
    setFormError(el.accountError, errorText(err));
  } finally {
    el.passkeySignin.disabled = false;
  }
}

let pairing = null; // {code, secret, timer}

async function onPairStart() {
  setFormError(el.accountError, '');
  stopPairing();
  try {
    const p = await acct.startPairing();
    el.pairQr.src = `/api/v1/account/pair/qr?code=${encodeURIComponent(p.code)}`;
    el.pairCode.textContent = p.code.replace(/^(.{4})/, '$1 ');
    el.pairStatus.textContent = 'Waiting for the other device…';
    el.pairBox.hidden = false;
    const until = Date.parse(p.expires_at);
    const mine = { code: p.code, secret: p.secret, timer: 0 };
    pairing = mine;
    const poll = async () => {
      if (pairing !== mine) return;
      if (Date.now() > until) {
        el.pairStatus.textContent = 'The code expired. Start again to get a new one.';
        stopPairing();
        return;
      }
      try {
        const r = await acct.finishPairing(mine.code, mine.secret);
        if (pairing !== mine) return;
        if (r) {
          stopPairing();
          el.pairBox.hidden = true;
          await signInAs(r);
          return;
        }
      } catch (err) {
        if (pairing !== mine) return;
        el.pairStatus.textContent = errorText(err);
      }
      mine.timer = window.setTimeout(poll, 1500);
    };
    mine.timer = window.setTimeout(poll, 1500);
  } catch (err) {
    setFormError(el.accountError, errorText(err));
  }
}

function stopPairing() {
  if (pairing) clearTimeout(pairing.timer);
  pairing = null;
}

// ---- Signed in: people, devices, invites, approving a new device ----------

/** Fills the people and device lists once signed in with an account. */
export async function renderAccount() {
  const auth = S.auth;
  el.contactsCard.hidden = el.accountBox.hidden = !(auth && auth.credential);
  if (!auth || !auth.credential) return;
  try {
    const people = await acct.contacts(auth.token);
    if (S.auth !== auth) return;
    for (const c of people) names.set(c.user, c.name);
    el.contacts.replaceChildren(...people.map(contactRow));
    el.contactsEmpty.hidden = people.length > 0;
  } catch (err) {
    el.contactsEmpty.hidden = false;
    el.contactsEmpty.textContent = `Your people could not be loaded: ${errorText(err)}`;
  }
  await Promise.all([renderDevices(), renderRequests(), renderPush()]);
}

async function renderRequests() {
  const auth = S.auth;
  try {
    const list = await acct.contactRequests(auth.token);
    if (S.auth !== auth) return;
    el.contactRequests.replaceChildren(...list.map((r) => {
      const li = document.createElement('li');
      li.className = 'contact';
      li.dataset.request = r.user;
      const name = document.createElement('span');
      name.className = 'contact-name';
      name.textContent = `${r.name} asks to be among your people`;
      const answer = (label, yes) => {
        const b = document.createElement('button');
        b.type = 'button';
        b.className = yes ? 'btn btn-call' : 'btn';
        b.dataset.act = yes ? 'accept' : 'decline';
        b.textContent = label;
        b.addEventListener('click', async () => {
          try {
            await acct.answerContact(auth.token, r.user, yes);
            renderAccount();
          } catch (err) {
            el.accountStatus.textContent = errorText(err);
          }
        });
        return b;
      };
      li.append(makeAvatar(r.name), name, answer('Accept', true), answer('Decline', false));
      return li;
    }));
  } catch (err) {
    el.accountStatus.textContent = `Requests could not be loaded: ${errorText(err)}`;
  }
}

async function onAskContact(ev) {
  ev.preventDefault();
  const user = el.contactAskUser.value.trim();
  if (!user) return;
  try {
    const r = await acct.askContact(S.auth.token, user);
    el.contactAskUser.value = '';
    el.accountStatus.textContent = r.state === 'added' ? `${user} is among your people now.` : `Asked ${user}: they see your request when they open Tandem.`;
    if (r.state === 'added') renderAccount();
  } catch (err) {
    el.accountStatus.textContent = errorText(err);
  }
}

/** @type {Map<string, string>} the contacts' names, by user */
const names = new Map();

/** A user as their person's page shows them: their name if a contact. */
export function displayName(user) {
  return names.get(user) || user;
}

/** @type {Map<string, import('../protocol.js').PersonPresence>} the contacts' presence, by user */
const presence = new Map();

/**
 * A presence message: each contact's row shows where they are; someone
 * not yet listed (a new contact) brings the list up to date.
 * @param {import('../protocol.js').Presence} msg
 */
export function onPresence(msg) {
  let unknown = false;
  for (const p of msg.people || []) {
    presence.set(p.user, p);
    const row = /** @type {HTMLElement | null} */ (el.contacts.querySelector(`li[data-user="${CSS.escape(p.user)}"]`));
    if (row) showPresence(row, p);
    else unknown = true;
  }
  if (unknown) renderAccount();
}

/** The contacts' presence states, by user. */
export function presenceStates() {
  return Object.fromEntries([...presence].map(([u, p]) => [u, p.state]));
}

const PRESENCE_TEXT = { available: 'Available', in_call: 'In a call' };

function showPresence(row, p) {
  row.dataset.presence = p.state;
  const node = row.querySelector('.contact-presence');
  if (!node) return;
  node.textContent = PRESENCE_TEXT[p.state] || (p.last_seen_ms ? `Last seen ${lastSeenText(p.last_seen_ms)}` : 'Offline');
}

/** "just now", "5 minutes ago", "yesterday at 18:02", or a date. */
function lastSeenText(ms) {
  const ago = Date.now() - ms;
  if (ago < 90000) return 'just now';
  if (ago < 3600000) return `${Math.round(ago / 60000)} minutes ago`;
  const d = new Date(ms);
  const time = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  if (ago < 86400000 && d.getDate() === new Date().getDate()) return `today at ${time}`;
  if (ago < 2 * 86400000) return `yesterday at ${time}`;
  return d.toLocaleDateString();
}

function contactRow(c) {
  const li = document.createElement('li');
  li.className = 'contact';
  li.dataset.user = c.user;
  const name = document.createElement('span');
  name.className = 'contact-name';
  name.textContent = c.name;
  name.title = c.user;
  const where = document.createElement('span');
  where.className = 'contact-presence muted';
  name.append(document.createElement('br'), where);
  const button = (label, icon, act) => {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'btn btn-call';
    b.dataset.act = act;
    b.setAttribute('aria-label', `${label} ${c.name}`);
    b.textContent = label;
    b.addEventListener('click', () => {
      placeCall(c.user, act === 'video', { help: act === 'help' }).catch((err) => setFormError(el.callError, errorText(err)));
    });
    return b;
  };
  const face = makeAvatar(c.name);
  if (c.avatar && S.auth) showPicture(face, c.user);
  li.append(face, name, button('Audio', 'phone', 'audio'), button('Video', 'video', 'video'), button('Help', 'screen', 'help'));
  const p = presence.get(c.user);
  if (p) showPresence(li, p);
  return li;
}

/** Puts user's picture in place of their initials, once it has loaded. */
async function showPicture(face, user) {
  const url = await acct.avatarURL(S.auth.token, user);
  if (!url) return;
  const img = document.createElement('img');
  img.className = 'avatar-picture';
  img.alt = '';
  img.src = url;
  face.replaceChildren(img);
  face.dataset.picture = 'true';
}

async function onAvatarFile() {
  const file = el.avatarFile.files && el.avatarFile.files[0];
  if (!file) return;
  try {
    await acct.setAvatar(S.auth.token, file);
    el.accountStatus.textContent = 'Your picture is set: your people see it.';
  } catch (err) {
    el.accountStatus.textContent = errorText(err);
  }
  el.avatarFile.value = '';
}

async function renderDevices() {
  const auth = S.auth;
  try {
    const list = await acct.devices(auth.token);
    if (S.auth !== auth) return;
    el.deviceList.replaceChildren(...list.map((d) => {
      const li = document.createElement('li');
      li.className = 'contact';
      li.dataset.device = d.id;
      const name = document.createElement('span');
      name.className = 'contact-name';
      const used = d.last_used ? new Date(d.last_used).toLocaleString() : 'never';
      name.textContent = d.this ? `${d.name} (this device)` : `${d.name} — last used ${used}`;
      li.append(name);
      if (!d.this) {
        const b = document.createElement('button');
        b.type = 'button';
        b.className = 'btn';
        b.textContent = 'Remove';
        b.setAttribute('aria-label', `Remove ${d.name}`);
        b.addEventListener('click', async () => {
          try {
            await acct.removeDevice(auth.token, d.id);
            el.accountStatus.textContent = `${d.name} was removed and signed out.`;
            renderDevices();
          } catch (err) {
            el.accountStatus.textContent = errorText(err);
          }
        });
        li.append(b);
      }
      return li;
    }));
  } catch (err) {
    el.accountStatus.textContent = `Your devices could not be loaded: ${errorText(err)}`;
  }
}

async function onApprove(ev) {
  ev.preventDefault();
  const code = el.pairApproveCode.value.trim();
  const name = el.pairApproveName.value.trim();
  if (!code || !name) {
    el.accountStatus.textContent = 'Type the code the new device shows, and a name for it.';
    return;
  }
  try {
    await acct.approvePairing(S.auth.token, code, name);
    el.accountStatus.textContent = `${name} is being signed in.`;
    el.pairApproveCode.value = el.pairApproveName.value = '';
    setTimeout(renderDevices, 2500);
  } catch (err) {
    el.accountStatus.textContent = errorText(err);
  }
}

async function onInvite() {
  try {
    const r = await acct.createInvite(S.auth.token, { name: el.inviteFor.value.trim() });
    el.inviteLink.value = r.link;
    el.inviteLink.hidden = false;
    el.inviteLink.select();
    const until = new Date(r.expires_at).toLocaleDateString();
    el.accountStatus.textContent = `Send this link to ${r.for || 'them'}: it works once, until ${until}.`;
  } catch (err) {
    el.accountStatus.textContent = errorText(err);
  }
}

/**
 * A #pair= link opened on a signed-in device (its camera app read the new
 * device's QR code): asks to name the device, to approve it.
 */
export function offerApproval(code) {
  el.accountBox.hidden = false;
  el.accountBox.open = true;
  el.pairApproveCode.value = code;
  el.accountStatus.textContent = 'Name the new device and press “Add device” to sign it in as you.';
  el.pairApproveName.focus();
}

// ---- Keeping the access token fresh ---------------------------------------

let refreshTimer = 0;

/**
 * Gets a fresh access token with the device's credential, before the one
 * it has expires, for as long as the page is signed in. Returns false when
 * the credential is refused (the device was removed): sign in again.
 */
export async function refreshToken() {
  const auth = S.auth;
  if (!auth || !auth.credential) return true;
  try {
    const r = await acct.freshToken(auth.credential);
    if (S.auth !== auth) return true;
    S.auth = { ...auth, token: r.token, name: r.name, deviceName: r.device_name };
    saveAuth(S.auth);
    if (S.sig) S.sig.token = r.token;
    scheduleRefresh(r.expires_at);
    return true;
  } catch (err) {
    if (err && (err.status === 401 || err.status === 403)) return false;
    refreshTimer = window.setTimeout(refreshToken, 30000); // the server is away: try again
    return true;
  }
}

/** Arms the refresh a few minutes before expiresAt. */
export function scheduleRefresh(expiresAt) {
  clearTimeout(refreshTimer);
  const left = Date.parse(expiresAt) - Date.now();
  refreshTimer = window.setTimeout(refreshToken, Math.max(5000, left - Math.min(5 * 60000, left / 5)));
}

export function stopRefresh() {
  clearTimeout(refreshTimer);
}

/** Why a device's credential stopped working, as its person is told. */
export const REMOVED = 'This device was signed out: it was removed from your devices, or your account was disabled. Sign in again.';

/**
 * A stored sign-in whose token expired: the same sign-in with a fresh
 * token from the device's credential. Throws the API's error: status 401
 * or 403 when the credential no longer holds.
 */
export async function revive(auth) {
  const r = await acct.freshToken(auth.credential);
  return { ...auth, token: r.token, user: r.user, device: r.device, name: r.name, deviceName: r.device_name };
}

export function wireAccount() {
  el.joinForm.addEventListener('submit', (ev) => { onJoinSubmit(ev); });
  el.passkeySignin.addEventListener('click', () => { onPasskeySignIn(); });
  el.pairStart.addEventListener('click', () => { onPairStart(); });
  el.oidcSignin.addEventListener('click', () => { location.assign(acct.identityProviderURL(defaultDeviceName())); });
  el.pairApproveForm.addEventListener('submit', (ev) => { onApprove(ev); });
  el.inviteCreate.addEventListener('click', () => { onInvite(); });
  el.contactAskForm.addEventListener('submit', (ev) => { onAskContact(ev); });
  el.avatarFile.addEventListener('change', () => { onAvatarFile(); });
  el.avatarRemove.addEventListener('click', async () => {
    try {
      await acct.removeAvatar(S.auth.token);
      el.accountStatus.textContent = 'Your picture is removed: your people see your initials.';
    } catch (err) {
      el.accountStatus.textContent = errorText(err);
    }
  });
}
