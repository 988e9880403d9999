// @ts-check
// Recent calls: the history list and its refresh.
import { refreshHistory } from '../history.js';
import { el } from '../ui.js';
import { REMOVED, refreshToken } from './account.js';
import { placeCall } from './outgoing.js';
import { signOut } from './signin.js';
import { S } from './state.js';

let historyTimer = null;
let retriedWith = ''; // the token a refused history load got a fresh one for
export function loadHistory() {
  if (!S.auth) return;
  clearTimeout(historyTimer);
  // Coalesce bursts (ended + welcome); the server writes history on end.
  historyTimer = setTimeout(() => {
    if (!S.auth) return;
    const token = S.auth.token;
    refreshHistory(token, (peer, video) => {
      el.callTo.value = peer;
      placeCall(peer, video);
    }).catch((err) => {
      if (S.auth && S.auth.token === token && err && err.status === 401) {
        if (S.auth.credential && retriedWith !== token) {
          // An account's device gets a fresh token and tries again, once.
          retriedWith = token;
          refreshToken().then((ok) => (ok ? loadHistory() : signOut(REMOVED)));
          return;
        }
        signOut('Your session has expired. Please sign in again.');
      }
    });
  }, 250);
}
