// @ts-check
// Recent calls: the history list and its refresh.
import { refreshHistory } from '../history.js';
import { el } from '../ui.js';
import { placeCall } from './outgoing.js';
import { signOut } from './signin.js';
import { S } from './state.js';

let historyTimer = null;
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
        signOut('Your session has expired. Please sign in again.');
      }
    });
  }, 250);
}
