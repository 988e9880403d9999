// @ts-check
// Tandem's own accounts (docs/protocol.md, "Accounts"): an invite link
// makes an account with a passkey; a passkey signs in on any device that
// has it; a device keeps its own credential and trades it for short-lived
// access tokens; a signed-in device approves a new one by its code. Part
// of the client library: another page can sign in with it the same way.
import { request, ApiError } from './api.js';

/**
 * What a device gets when it signs in.
 * @typedef {object} SignedIn
 * @property {string} user the person's user id
 * @property {string} name their display name
 * @property {string} device this device's id
 * @property {string} device_name this device's name, as its person gave it
 * @property {string} [credential] the device's long-lived credential (only when it is made)
 * @property {string} token a short-lived access token
 * @property {string} expires_at when the token expires (RFC 3339)
 */

/** @param {string} s base64url @returns {ArrayBuffer} */
function fromB64url(s) {
  const b64 = s.replace(/-/g, '+').replace(/_/g, '/');
  const bin = atob(b64 + '==='.slice((b64.length + 3) % 4));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out.buffer;
}

/** @param {ArrayBuffer | ArrayBufferView | null} buf @returns {string | undefined} */
function toB64url(buf) {
  if (!buf) return undefined;
  const bytes = buf instanceof ArrayBuffer ? new Uint8Array(buf) : new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** The server's creation options as the browser takes them. */
function creationOptions(o) {
  const P = /** @type {any} */ (window.PublicKeyCredential);
  if (P && typeof P.parseCreationOptionsFromJSON === 'function') return P.parseCreationOptionsFromJSON(o);
  return {
    ...o,
    challenge: fromB64url(o.challenge),
    user: { ...o.user, id: fromB64url(o.user.id) },
    excludeCredentials: (o.excludeCredentials || []).map((c) => ({ ...c, id: fromB64url(c.id) })),
  };
}

/** The server's request options as the browser takes them. */
function requestOptions(o) {
  const P = /** @type {any} */ (window.PublicKeyCredential);
  if (P && typeof P.parseRequestOptionsFromJSON === 'function') return P.parseRequestOptionsFromJSON(o);
  return {
    ...o,
    challenge: fromB64url(o.challenge),
    allowCredentials: (o.allowCredentials || []).map((c) => ({ ...c, id: fromB64url(c.id) })),
  };
}

/** A credential the browser made or used, as JSON for the server. */
function credentialJSON(c) {
  if (typeof c.toJSON === 'function') return c.toJSON();
  const r = c.response;
  const response = r.attestationObject
    ? { clientDataJSON: toB64url(r.clientDataJSON), attestationObject: toB64url(r.attestationObject),
        transports: typeof r.getTransports === 'function' ? r.getTransports() : [] }
    : { clientDataJSON: toB64url(r.clientDataJSON), authenticatorData: toB64url(r.authenticatorData),
        signature: toB64url(r.signature), userHandle: toB64url(r.userHandle) };
  return { id: c.id, rawId: toB64url(c.rawId), type: c.type, response,
    clientExtensionResults: c.getClientExtensionResults ? c.getClientExtensionResults() : {},
    authenticatorAttachment: c.authenticatorAttachment || undefined };
}

/** Whether this browser can make and use passkeys at all. */
export function passkeysSupported() {
  return !!(window.PublicKeyCredential && navigator.credentials && window.isSecureContext);
}

/** A person's answer to the passkey prompt, or a clear error when they cancelled. */
async function ask(promise) {
  try {
    const c = await promise;
    if (!c) throw new ApiError('No passkey was chosen.', { code: 'cancelled' });
    return c;
  } catch (err) {
    if (err instanceof ApiError) throw err;
    if (err && err.name === 'NotAllowedError') throw new ApiError('The passkey prompt was closed or timed out. Try again.', { code: 'cancelled' });
    if (err && err.name === 'InvalidStateError') throw new ApiError('This device already has a passkey for this account.', { code: 'exists' });
    throw new ApiError(`The passkey could not be used: ${(err && err.message) || err}`, { code: 'passkey' });
  }
}

/** POST /api/v1/account/invite → who made an invite link, and for whom. */
export function inviteInfo(invite) {
  return request('/api/v1/account/invite', { method: 'POST', body: { invite } });
}

/**
 * Makes an account from an invite link: the person's name, a passkey on
 * this device, and this device signed in.
 * @returns {Promise<SignedIn>}
 */
export async function registerWithInvite(invite, name, deviceName) {
  const begun = await request('/api/v1/account/register/begin', { method: 'POST', body: { invite, name } });
  const cred = await ask(navigator.credentials.create({ publicKey: creationOptions(begun.options.publicKey) }));
  return request('/api/v1/account/register/finish', { method: 'POST', timeoutMs: 20000,
    body: { ceremony: begun.ceremony, credential: credentialJSON(cred), device_name: deviceName } });
}

/**
 * Signs this device in with a passkey it has (or a phone nearby has).
 * @returns {Promise<SignedIn>}
 */
export async function signInWithPasskey(deviceName) {
  const begun = await request('/api/v1/account/login/begin', { method: 'POST', body: {} });
  const cred = await ask(navigator.credentials.get({ publicKey: requestOptions(begun.options.publicKey) }));
  return request('/api/v1/account/login/finish', { method: 'POST', timeoutMs: 20000,
    body: { ceremony: begun.ceremony, credential: credentialJSON(cred), device_name: deviceName } });
}

/**
 * Trades the device's credential for a fresh access token.
 * @returns {Promise<SignedIn>}
 */
export function freshToken(credential) {
  return request('/api/v1/account/token', { method: 'POST', body: { credential } });
}

/** Where the browser goes to sign in with the server's identity provider. */
export function identityProviderURL(deviceName) {
  return `/api/v1/account/oidc/start?device=${encodeURIComponent(deviceName)}`;
}

/**
 * Collects the sign-in an identity provider's round trip left under a
 * one-time code.
 * @returns {Promise<SignedIn>}
 */
export function collectSignIn(code) {
  return request('/api/v1/account/oidc/finish', { method: 'POST', body: { code } });
}

/** Starts adding this device: {code, secret, link, expires_at}. */
export function startPairing() {
  return request('/api/v1/account/pair/start', { method: 'POST', body: {} });
}

/**
 * Collects this device's sign-in once another approved it: null while it
 * waits.
 * @returns {Promise<SignedIn | null>}
 */
export async function finishPairing(code, secret) {
  const r = await request('/api/v1/account/pair/finish', { method: 'POST', body: { code, secret } });
  return r && r.pending ? null : r;
}

/** Approves the device waiting with code, naming it. */
export function approvePairing(token, code, deviceName) {
  return request('/api/v1/account/pair/approve', { method: 'POST', token, body: { code, device_name: deviceName } });
}

/** The signed-in person: {user, name, role, device, can_invite}. */
export function me(token) {
  return request('/api/v1/account/me', { token });
}

/** The person's devices: [{id, name, created, last_used, this}]. */
export async function devices(token) {
  const r = await request('/api/v1/account/devices', { token });
  return Array.isArray(r.devices) ? r.devices : [];
}

/** Removes a device: it is signed out everywhere at once. */
export function removeDevice(token, id) {
  return request(`/api/v1/account/devices/${encodeURIComponent(id)}`, { method: 'DELETE', token });
}

/** Makes an invite link: {link, expires_at, uses, for}. */
export function createInvite(token, { name = '', uses = 1 } = {}) {
  return request('/api/v1/account/invites', { method: 'POST', token, body: { for: name, uses } });
}

/** The person's contacts: [{user, name, since}]. */
export async function contacts(token) {
  const r = await request('/api/v1/account/contacts', { token });
  return Array.isArray(r.contacts) ? r.contacts : [];
}

/** Who asks to be the person's contact: [{user, name, since}]. */
export async function contactRequests(token) {
  const r = await request('/api/v1/account/contacts/requests', { token });
  return Array.isArray(r.requests) ? r.requests : [];
}

/** Asks user to be the person's contact: {state: 'requested'|'added'}. */
export function askContact(token, user) {
  return request('/api/v1/account/contacts/requests', { method: 'POST', token, body: { user } });
}

/** Accepts (yes) or declines someone's request. */
export function answerContact(token, user, yes) {
  const path = `/api/v1/account/contacts/requests/${encodeURIComponent(user)}`;
  return yes ? request(path + '/accept', { method: 'POST', token, body: {} }) : request(path, { method: 'DELETE', token });
}

/** Sets the person's picture from a file (the server keeps a small copy without its metadata). */
export async function setAvatar(token, file) {
  const res = await fetch('/api/v1/account/avatar', {
    method: 'PUT', body: file, credentials: 'omit', cache: 'no-store',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': file.type || 'application/octet-stream' },
  });
  if (!res.ok) {
    const data = await res.json().catch(() => null);
    throw new ApiError((data && data.error && data.error.message) || `Server error (${res.status})`, { status: res.status });
  }
}

/** Removes the person's picture. */
export function removeAvatar(token) {
  return request('/api/v1/account/avatar', { method: 'DELETE', token });
}

/** A contact's picture as an object URL, or null if they have none. */
export async function avatarURL(token, user) {
  const res = await fetch(`/api/v1/account/avatar/${encodeURIComponent(user)}`, {
    headers: { Authorization: `Bearer ${token}` }, credentials: 'omit',
  });
  if (!res.ok) return null;
  return URL.createObjectURL(await res.blob());
}
