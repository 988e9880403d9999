// @ts-check
// Signing in and out, and the question asked before a #token= link replaces who is signed in.
import { getInfo, devToken } from '../api.js';
import {
  saveAuth, clearAuth, loadNames, defaultDeviceName, normalizeId, validId, tokenClaims,
  claimIdentity, releaseIdentity,
} from '../auth.js';
import { clearHistory } from '../history.js';
import { unlockAudio } from '../ringtone.js';
import { el, showScreen, hideBanner, paintAvatar } from '../ui.js';
import { sendSig, startSignaling } from './connection.js';
import { dismissAllIncoming } from './incoming.js';
import { endCurrentCall } from './lifecycle.js';
import { loadHistory } from './recent.js';
import { removeDevice } from '../account.js';
import { accountsOn, renderAccount, scheduleRefresh, showAccountSignIn, stopRefresh } from './account.js';
import { shareCredential } from './pwa.js';
import { S, errorText, setState } from './state.js';

export function showSignIn(message, names) {
  setState('signed-out');
  const saved = names || loadNames();
  if (!el.signinUser.value) el.signinUser.value = saved.user || '';
  if (!el.signinDevice.value) el.signinDevice.value = saved.device || defaultDeviceName();
  el.me.hidden = true;
  showScreen('signin');
  setFormError(el.signinError, message || '');
  setTimeout(() => (el.signinUser.value ? el.signinDevice : el.signinUser).focus(), 0);
}

/** Shows the right signed-out screen for this server's mode. */
export function showSignedOut(message, names) {
  if (S.dev || !S.info) {
    showSignIn(message, names);
    return;
  }
  setState('signed-out');
  el.me.hidden = true;
  el.notokenText.textContent = message
    ? `${message} Open Tandem from your app to sign in again.`
    : 'Open Tandem from your app to sign in. It hands this page a sign-in link.';
  showAccountSignIn();
  if (message && accountsOn()) el.notokenText.textContent = message;
  showScreen('notoken');
}

export function setFormError(node, text) {
  node.textContent = text;
  node.hidden = !text;
}

export async function onSignInSubmit(ev) {
  ev.preventDefault();
  unlockAudio();
  hideBanner();
  const user = normalizeId(el.signinUser.value);
  const device = normalizeId(el.signinDevice.value) || defaultDeviceName();
  el.signinUser.value = user;
  el.signinDevice.value = device;
  if (!validId(user)) {
    setFormError(el.signinError, 'Enter a name (no spaces, up to 128 characters).');
    el.signinUser.focus();
    return;
  }
  if (!validId(device)) {
    setFormError(el.signinError, 'Enter a device name (no spaces, up to 128 characters).');
    el.signinDevice.focus();
    return;
  }
  setFormError(el.signinError, '');
  el.signinSubmit.disabled = true;
  el.signinSubmit.textContent = 'Signing in…';
  try {
    if (!S.info) {
      try {
        S.info = await getInfo();
        S.dev = !!S.info.dev;
      } catch (err) {
        throw new Error(`Server unreachable — ${errorText(err)}`);
      }
    }
    if (!S.dev) throw new Error('This server is not in development mode: sign in through your app.');
    const { token } = await devToken(user, device);
    await signIn({ token, user, device }, { steal: true });
  } catch (err) {
    setFormError(el.signinError, errorText(err));
  } finally {
    el.signinSubmit.disabled = false;
    el.signinSubmit.textContent = 'Sign in';
  }
}

/**
 * Starts a signed-in session with auth. Returns false (and shows the
 * sign-in screen) when another tab already uses this identity.
 */
export async function signIn(auth, { steal = false, quietConflict = false } = {}) {
  const claims = tokenClaims(auth.token);
  const user = auth.user || claims.sub || '';
  const device = auth.device || claims.dev || '';
  const free = await claimIdentity(user, device, { steal });
  if (!free) {
    if (quietConflict) {
      showSignIn(`${user} on ${device} is signed in in another tab. Sign in here with another name or device name.`, {
        user: '',
        device: defaultDeviceName(),
      });
    }
    return false;
  }
  S.auth = { token: auth.token, user, device };
  if (auth.credential) {
    Object.assign(S.auth, { credential: auth.credential, name: auth.name || '', deviceName: auth.deviceName || '' });
    shareCredential(auth.credential); // for Decline on a notification, with no page open
  }
  saveAuth(S.auth);
  showMe(user, device);
  hideBanner();
  showScreen('home');
  setState('idle');
  clearHistory();
  startSignaling();
  loadHistory();
  if (S.auth.credential) {
    scheduleRefresh(new Date((tokenClaims(S.auth.token).exp || 0) * 1000).toISOString());
    renderAccount();
  }
  return true;
}

export function showMe(user, device) {
  const name = (S.auth && S.auth.name) || user;
  el.meName.textContent = name;
  el.meDevice.textContent = (S.auth && S.auth.deviceName) || device;
  paintAvatar(el.meAvatar, name);
  el.me.hidden = false;
  el.me.title = `Signed in as ${name} (${user}) on ${el.meDevice.textContent}`;
}

export function signOut(message, { keepNames = true } = {}) {
  const token = S.auth && S.auth.token;
  stopRefresh();
  shareCredential('');
  if (S.auth && S.auth.credential && !message) {
    // Signing out on purpose forgets this device: its credential is refused from now on.
    removeDevice(S.auth.token, S.auth.device).catch(() => {});
  }
  const names = S.auth ? { user: S.auth.user, device: S.auth.device } : null;
  if (S.call && S.call.callId) sendSig({ type: 'hangup', call_id: S.call.callId });
  endCurrentCall(null);
  dismissAllIncoming();
  if (S.sig) {
    S.sig.stop();
    S.sig = null;
  }
  S.conn = 'closed';
  S.auth = null;
  S.activeCall = S.pushOffer = null;
  S.moving = false;
  el.activeCall.hidden = true;
  clearAuth(token);
  releaseIdentity();
  clearHistory();
  el.signinUser.value = '';
  el.signinDevice.value = '';
  showSignedOut(message, keepNames ? names : null);
}
