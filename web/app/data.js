// @ts-check
// Your data: the assist log, exporting everything Tandem holds on you, and erasing it.
import { getAssistLog, exportMyData, eraseMyData } from '../api.js';
import { el } from '../ui.js';
import { myUser } from './group.js';
import { signOut } from './signin.js';
import { S, errorText } from './state.js';

/** Downloads everything the server holds about the user as a JSON file. */
export async function downloadMyData() {
  if (!S.auth) return;
  el.exportData.disabled = true;
  el.myDataStatus.textContent = 'Preparing your data…';
  try {
    const archive = await exportMyData(S.auth.token);
    S.lastExport = archive;
    const blob = new Blob([JSON.stringify(archive, null, 2)], { type: 'application/json' });
    const a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    a.download = `tandem-${archive.user}.json`;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
    const n = archive.calls.length;
    el.myDataStatus.textContent = `Downloaded: ${n} ${n === 1 ? 'call' : 'calls'} and ${archive.assist_log.length} screen help entries.`;
  } catch (err) {
    el.myDataStatus.textContent = `Your data could not be downloaded: ${errorText(err)}`;
  } finally {
    el.exportData.disabled = false;
  }
}

/** Erases everything the server holds about the user, then signs out. */
export async function eraseAll() {
  if (!S.auth) return;
  el.eraseConfirm.disabled = true;
  el.myDataStatus.textContent = 'Erasing…';
  S.erasing = true;
  try {
    await eraseMyData(S.auth.token);
    el.eraseConfirmRow.hidden = true;
    signOut('Your data was erased from this server, and your devices were signed out.');
  } catch (err) {
    el.myDataStatus.textContent = `Your data could not be erased: ${errorText(err)}`;
  } finally {
    S.erasing = false;
    el.eraseConfirm.disabled = false;
  }
}

export async function loadAssistLog() {
  if (!S.auth) return;
  let entries;
  try {
    entries = await getAssistLog(S.auth.token);
  } catch (err) {
    el.assistLogEmpty.textContent = `The log could not be loaded: ${errorText(err)}`;
    el.assistLogEmpty.hidden = false;
    return;
  }
  const what = { start: 'started', request: 'asked for', grant: 'allowed', revoke: 'took back', denied: 'not answered:', end: 'ended' };
  const items = entries.map((e) => {
    const li = document.createElement('li');
    li.className = 'assist-entry';
    li.dataset.event = e.event;
    const who = e.helped === myUser() ? `${e.helper} helping you` : `you helping ${e.helped}`;
    if (e.event === 'clipboard') {
      // Who sent copied text to whom; what it said is not kept.
      const helperSent = e.reason === 'from_helper';
      const dir = e.helped === myUser() ? (helperSent ? `${e.helper} sent you text` : `you sent ${e.helper} text`) : (helperSent ? `you sent ${e.helped} text` : `${e.helped} sent you text`);
      li.textContent = `${new Date(e.at).toLocaleString()} · ${dir}${e.device ? ` (${e.device})` : ''}`;
      return li;
    }
    const grants = (e.grants || []).join(', ');
    const when = new Date(e.at).toLocaleString();
    li.textContent = `${when} · ${who}${e.device ? ` (${e.device})` : ''} · ${what[e.event] || e.event} ${grants}${e.reason ? ` (${e.reason.replace(/_/g, ' ')})` : ''}`;
    return li;
  });
  el.assistLog.replaceChildren(...items);
  el.assistLogEmpty.hidden = items.length > 0;
}
