// @ts-check
// Start-up: reads the server's info and the stored sign-in, and opens the page a person expects.
import { getInfo } from '../api.js';
import {
  loadAuth, saveAuth, clearAuth, tokenExpired, authFromToken, sameIdentity,
} from '../auth.js';
import { pipSupported } from '../pip.js';
import { el, initUi, showBanner, toast, Tiles } from '../ui.js';
import { exposeApi } from './automation.js';
import { roomFromUrl } from './rooms.js';
import { REMOVED, offerApproval, revive, showJoin, signInAs, takeFragment } from './account.js';
import { registerWorker } from './pwa.js';
import { collectSignIn } from '../account.js';
import { showSignIn, showSignedOut, signIn, signOut } from './signin.js';
import { S, errorText, pageState, setState, setTiles } from './state.js';
import { wire } from './wiring.js';

export async function boot() {
  initUi();
  setTiles(new Tiles(el.tiles, el.screenCall));
  wire();
  el.popout.hidden = !pipSupported();
  exposeApi();
  setState('signed-out');

  S.autoRoom = roomFromUrl();
  if (S.autoRoom) {
    el.roomName.value = S.autoRoom.name;
    el.roomPtt.checked = S.autoRoom.ptt;
  }
  const fragToken = takeFragmentToken();
  const invite = takeFragment('invite');
  const pairCode = takeFragment('pair');
  const signinCode = takeFragment('signin');
  // A notification opened the app: answer that call once it rings here
  // (the device joins its ringing as it connects), or show it ringing.
  S.answerOnRing = takeFragment('answer');
  takeFragment('ring');
  registerWorker();
  const signinError = takeFragment('signin-error');
  window.addEventListener('hashchange', onHashToken);
  const infoPromise = getInfo().then(
    (info) => {
      S.info = info;
      S.dev = !!(info && info.dev);
      return info;
    },
    (err) => {
      S.info = null;
      return Promise.reject(err);
    },
  );

  if (fragToken) {
    const next = authFromToken(fragToken);
    infoPromise.catch(() => {});
    const current = loadAuth();
    if (!current || tokenExpired(current.token) || sameIdentity(current, next) || (await confirmSwitch(current, next))) {
      await signIn(next, { steal: true });
      return;
    }
    // Keep whoever is signed in: carry on as if there were no link.
  }

  let stored = loadAuth();
  let infoErr = null;
  try {
    await infoPromise;
  } catch (err) {
    infoErr = err;
  }
  if (invite && !infoErr) {
    await showJoin(invite);
    return;
  }
  if (signinCode) {
    // Back from the identity provider: the sign-in it made waits under a one-time code.
    try {
      await signInAs(await collectSignIn(signinCode));
      return;
    } catch (err) {
      showSignedOut(`The sign-in did not finish: ${errorText(err)}.`);
      return;
    }
  }
  if (signinError) {
    showSignedOut(`${signinError}.`);
    return;
  }
  if (stored && stored.credential && tokenExpired(stored.token)) {
    // An account's device: a fresh token from its credential.
    try {
      stored = await revive(stored);
    } catch (err) {
      if (err && (err.status === 401 || err.status === 403)) {
        clearAuth(stored.token);
        showSignedOut(REMOVED);
      } else {
        showSignedOut();
        showBanner(`Server unreachable — ${errorText(err)}. Check your network, then reload.`);
      }
      return;
    }
  }

  if (stored && !tokenExpired(stored.token)) {
    const ok = await signIn(stored, { steal: stored.source === 'tab', quietConflict: true });
    if (ok && pairCode) offerApproval(pairCode);
    if (ok && infoErr) {
      // Opened from the installed app with the server away: say so plainly.
      showBanner('Offline — the server cannot be reached. Tandem keeps trying, and calls ring here again once it can.');
    }
    if (ok) return;
  } else if (stored) {
    clearAuth(stored.token);
    showSignedOut('Your session has expired. Please sign in again.');
    return;
  }
  if (infoErr) {
    showSignIn();
    showBanner(`Server unreachable — ${errorText(infoErr)}. Check that Tandem is running, then try again.`);
    return;
  }
  showSignedOut();
}

/**
 * An app opening a new sign-in link in a tab that already shows Tandem
 * changes only the fragment, which does not reload the page. Take the
 * token then too, unless a call is under way.
 */
async function onHashToken() {
  if (busyWithCall()) return;
  // An invite or a new device's code opened in the page that is open.
  const invite = takeFragment('invite');
  if (invite) {
    if (!S.auth) await showJoin(invite);
    else toast('You already have an account here. Open the invite on the device of the person it is for.');
    return;
  }
  const pairCode = takeFragment('pair');
  if (pairCode) {
    if (S.auth) offerApproval(pairCode);
    return;
  }
  const token = takeFragmentToken();
  if (!token) return;
  const next = authFromToken(token);
  if (S.auth && sameIdentity(S.auth, next)) {
    // The same user and device: a fresh token, nothing to ask.
    S.auth = { ...S.auth, token };
    saveAuth(S.auth);
    if (S.sig) S.sig.token = token;
    return;
  }
  if (S.auth) {
    if (!(await confirmSwitch(S.auth, next)) || busyWithCall()) return;
    signOut();
  }
  signIn(next, { steal: true }).catch((err) => {
    showSignedOut(`Could not sign in: ${errorText(err)}.`);
  });
}

function busyWithCall() {
  const s = pageState();
  return s === 'calling' || s === 'ringing' || s === 'in-call';
}

export let settleSwitch = null; // answers the question on screen, if any

/**
 * Asks whether a sign-in link for `next` may replace `current`, who is
 * signed in here. Resolves true to switch, false to keep `current`.
 */
function confirmSwitch(current, next) {
  if (settleSwitch) settleSwitch(false); // a newer link replaces the question
  const sameUser = current.user === next.user;
  const name = (a) => (a.user ? (sameUser ? `${a.user} on ${a.device}` : a.user) : 'someone else');
  el.switchUserText.textContent = `You are signed in as ${name(current)}. Sign in as ${name(next)} instead?`;
  el.switchUserYes.textContent = `Sign in as ${name(next)}`;
  el.switchUserNo.textContent = `Stay signed in as ${name(current)}`;
  el.switchUser.hidden = false;
  el.switchUserNo.focus();
  return new Promise((resolve) => {
    settleSwitch = (yes) => {
      settleSwitch = null;
      el.switchUser.hidden = true;
      resolve(yes);
    };
  });
}

function takeFragmentToken() {
  const hash = location.hash.replace(/^#/, '');
  if (!hash) return null;
  const params = new URLSearchParams(hash);
  const token = params.get('token');
  if (!token) return null;
  params.delete('token');
  const rest = params.toString();
  try {
    history.replaceState(null, '', location.pathname + location.search + (rest ? '#' + rest : ''));
  } catch {
    /* ignore */
  }
  return token;
}
