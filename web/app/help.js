// @ts-check
// Remote screen help (assist): asking, consent, the helper's pointer and keys, annotations.
import { displayName } from './account.js';
import { notifyHiddenText } from './pwa.js';
import {
  T as AT, TOOLS, encode as encodeAssist, decode as decodeAssist, isControl, keysym,
  AnnotationLayer, videoContentRect,
} from '../assist.js';
import { el, toast, safePlay } from '../ui.js';
import { sendSig } from './connection.js';
import { myUser } from './group.js';
import { S, errorText } from './state.js';

/** Grants, in the order the consent dialog lists them. */
const GRANTS = ['view', 'annotate', 'control', 'clipboard'];

function assistOf(call) {
  if (!call.assist) call.assist = { state: null, role: '', received: { control: 0, annotate: 0 }, tool: 'pen', stroke: 0, drawing: false, layer: null, local: null, wired: false };
  return call.assist;
}

export function wireAssist() {
  el.assist.addEventListener('click', () => {
    const open = el.assistPanel.hidden;
    el.assistPanel.hidden = !open;
    el.assist.setAttribute('aria-expanded', String(open));
  });
  el.assistAsk.addEventListener('click', () => startAssist(false));
  el.assistOffer.addEventListener('click', () => startAssist(true));
  el.assistReqAnnotate.addEventListener('click', () => requestAssist('annotate'));
  el.assistReqControl.addEventListener('click', () => requestAssist('control'));
  el.assistReqClipboard.addEventListener('click', () => requestAssist('clipboard'));
  el.assistClipSend.addEventListener('click', () => sendClipboard());
  el.assistClipCopy.addEventListener('click', () => copyReceived());
  el.assistScreenPick.addEventListener('change', () => {
    const call = S.call;
    if (!call || !call.callId) return;
    sendSig({ type: 'assist_screen', call_id: call.callId, screen: Number(el.assistScreenPick.value) });
  });
  el.assistEnd.addEventListener('click', () => endAssist());
  el.assistStop.addEventListener('click', () => endAssist());
  el.assistAllow.addEventListener('click', () => answerAssist(true));
  el.assistDeny.addEventListener('click', () => answerAssist(false));
  for (const b of el.assistView.querySelectorAll('.tool')) {
    b.addEventListener('click', () => setAssistTool(b.dataset.tool));
  }
  el.toolClear.addEventListener('click', () => sendAssistEvents([{ type: AT.clear }]));
  const c = el.assistCanvas;
  c.addEventListener('pointerdown', (e) => assistPointer(e, 'down'));
  c.addEventListener('pointermove', (e) => assistPointer(e, 'move'));
  c.addEventListener('pointerup', (e) => assistPointer(e, 'up'));
  c.addEventListener('wheel', (e) => assistWheel(e), { passive: false });
  c.addEventListener('keydown', (e) => assistKey(e, true));
  c.addEventListener('keyup', (e) => assistKey(e, false));
}

/** Starts screen help: asking to help them (helper) or asking them to help me. */
export async function startAssist(helpMe) {
  const call = S.call;
  if (!call || !call.callId || !call.session) return;
  el.assistPanel.hidden = true;
  const peer = [...call.members.keys()][0] || call.peer;
  const req = helpMe
    ? { type: 'assist', call_id: call.callId, helped: myUser(), grants: ['view'] }
    : { type: 'assist', call_id: call.callId, helped: peer, grants: ['annotate', 'control'] };
  try {
    if (helpMe) await shareMyScreen(call); // consent is this click
    await S.sig.request(req);
  } catch (err) {
    if (helpMe) call.session.stopScreen();
    toast(`Screen help could not start: ${errorText(err)}`, 6000);
  }
}

function requestAssist(grant) {
  const call = S.call;
  if (!call || !call.callId) return;
  el.assistPanel.hidden = true;
  S.sig.request({ type: 'assist_request', call_id: call.callId, grants: [grant] }).catch((err) => toast(errorText(err)));
}

/** Stops everything at once: grants, screen, the help itself. */
function endAssist() {
  const call = S.call;
  if (!call || !call.callId) return;
  el.assistPanel.hidden = true;
  const a = call.assist;
  if (a && a.role === 'helped') sendSig({ type: 'assist_grant', call_id: call.callId, grants: [] });
  sendSig({ type: 'assist_end', call_id: call.callId });
  if (call.session) call.session.stopScreen();
}

async function shareMyScreen(call) {
  if (call.session.screen) return;
  const stream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
  const track = stream.getVideoTracks()[0];
  // The browser's own "stop sharing" takes view back.
  track.addEventListener('ended', () => {
    if (S.call !== call || !call.assist || call.assist.role !== 'helped') return;
    const st = call.assist.state;
    const keep = st ? st.granted.filter((g) => g !== 'view') : [];
    sendSig({ type: 'assist_grant', call_id: call.callId, grants: keep });
    call.session.stopScreen();
  });
  call.session.shareScreen(track, stream);
  el.assistPreview.srcObject = stream;
}

/** The helped person's answer to what the helper asks. */
async function answerAssist(allow) {
  const call = S.call;
  el.assistConsent.hidden = true;
  if (!call || !call.assist || !call.assist.state) return;
  const st = call.assist.state;
  const want = new Set(st.granted);
  if (allow) {
    for (const g of GRANTS) {
      const box = el['consent' + g[0].toUpperCase() + g.slice(1)];
      if (st.requested.includes(g) && box.checked) want.add(g);
    }
  }
  if (want.has('view')) {
    try {
      await shareMyScreen(call);
    } catch (err) {
      want.delete('view');
      toast(`Your screen is not shared: ${errorText(err)}`, 6000);
    }
  }
  sendSig({ type: 'assist_grant', call_id: call.callId, grants: [...want] });
}

export function onAssistState(msg) {
  const call = S.call;
  if (!call || call.callId !== msg.call_id) return;
  const a = assistOf(call);
  msg.granted = Array.isArray(msg.granted) ? msg.granted : [];
  msg.requested = Array.isArray(msg.requested) ? msg.requested : [];
  a.state = msg;
  a.role = msg.helped === myUser() ? 'helped' : 'helper';
  if (call.session && msg.active) call.session.openAssist().catch(() => {});
  if (call.session && !a.wired) {
    a.wired = true;
    call.session.addEventListener('assist', (/** @type {CustomEvent} */ e) => onAssistMessage(call, e.detail));
  }
  const granted = new Set(msg.granted);
  const other = a.role === 'helped' ? msg.helper : msg.helped;
  if (a.role === 'helped') {
    if (!granted.has('view') && call.session && call.session.screen && msg.reason !== 'started') call.session.stopScreen();
    // Asked for something: the person decides.
    const asked = msg.active ? msg.requested : [];
    if (asked.length) {
      el.assistConsentTitle.textContent = `${other} asks to help you with your screen`;
      for (const g of GRANTS) {
        const key = g[0].toUpperCase() + g.slice(1);
        el['consent' + key + 'Row'].hidden = !asked.includes(g);
        // What acts on the device or lets data out is off until ticked.
        el['consent' + key].checked = g !== 'control' && g !== 'clipboard';
      }
      el.assistConsent.hidden = false;
      // In another tab or window: the request raises a notification too.
      notifyHiddenText(`${displayName(other)} asks to help with your screen`, 'Open Tandem to answer.', `assist-${msg.call_id}`);
    } else {
      el.assistConsent.hidden = true;
    }
    const can = [granted.has('view') && 'see your screen', granted.has('annotate') && 'draw on it', granted.has('control') && 'control your mouse and keyboard', granted.has('clipboard') && 'exchange copied text'].filter(Boolean);
    el.assistBar.hidden = !msg.active;
    el.assistBarText.textContent = can.length ? `${other} can ${can.join(', ')}` : `${other} is helping you; nothing is shared`;
    el.assistLocal.hidden = !(msg.active && granted.has('view'));
    if (!a.local) a.local = new AnnotationLayer(el.assistOverlay, { contentRect: () => videoContentRect(el.assistPreview) });
  } else {
    el.assistWho.textContent = `Helping ${other}`;
    el.toolPen.disabled = el.toolArrow.disabled = el.toolLaser.disabled = el.toolClear.disabled = !granted.has('annotate');
    el.toolControl.disabled = !granted.has('control');
    if ((a.tool === 'control' && !granted.has('control')) || (a.tool !== 'control' && !granted.has('annotate'))) {
      setAssistTool(granted.has('annotate') ? 'pen' : granted.has('control') ? 'control' : 'pen');
    }
    el.assistView.hidden = !(msg.active && granted.has('view'));
    if (!a.layer) a.layer = new AnnotationLayer(el.assistCanvas, { contentRect: () => videoContentRect(el.assistScreen) });
    if (msg.reason === 'request_timeout') toast(`${other} did not answer.`);
  }
  el.assistStart.hidden = !!msg.active;
  el.assistHelper.hidden = !(msg.active && a.role === 'helper');
  el.assistReqClipboard.hidden = granted.has('clipboard');
  showClipboard(msg.active && granted.has('clipboard'));
  if (msg.reason === 'control_idle') toast('Remote control ended after a while unused.');
  if (!msg.active) endAssistUi(call);
}

function onAssistMessage(call, buf) {
  if (S.call !== call || !call.assist) return;
  const events = decodeAssist(buf);
  const a = call.assist;
  for (const e of events) {
    if (isControl(e.type)) a.received.control += 1;
    else a.received.annotate += 1;
  }
  if (a.local) a.local.apply(events);
}

/** Shows or hides the copied-text box; hidden, it forgets what came. */
function showClipboard(on) {
  el.assistClip.hidden = !on;
  if (on) return;
  el.assistClipGot.hidden = true;
  el.assistClipIn.textContent = '';
  el.assistClipOut.value = '';
}

/** The screens the helped device can show (its monitors, all of them together): the helper picks one. */
export function onAssistScreens(msg) {
  const call = S.call;
  if (!call || call.callId !== msg.call_id || !Array.isArray(msg.screens)) return;
  const pick = el.assistScreenPick;
  pick.replaceChildren(...msg.screens.map((sc, i) => {
    const o = document.createElement('option');
    o.value = String(i);
    o.textContent = `${sc.name} (${sc.width}×${sc.height})`;
    o.selected = i === msg.shown;
    return o;
  }));
  pick.hidden = msg.screens.length < 2;
}

/** Text copied on the other side of the help, for this person to paste. */
export function onAssistClipboard(msg) {
  const call = S.call;
  if (!call || call.callId !== msg.call_id || typeof msg.text !== 'string') return;
  el.assistClipIn.textContent = msg.text;
  el.assistClipFrom.textContent = `From ${displayName(msg.from)}, ${new Date().toLocaleTimeString()}`;
  el.assistClipGot.hidden = false;
  el.assistClip.hidden = false;
  toast(`${displayName(msg.from)} sent you text to paste.`);
}

/** Sends the typed or pasted text to the other side of the help. */
async function sendClipboard() {
  const call = S.call;
  const text = el.assistClipOut.value;
  if (!call || !call.callId || !text) return;
  try {
    await S.sig.request({ type: 'assist_clipboard', call_id: call.callId, text });
    el.assistClipOut.value = '';
    toast('Sent.');
  } catch (err) {
    toast(`The text was not sent: ${errorText(err)}`, 6000);
  }
}

/** Puts the received text on this device's clipboard. */
async function copyReceived() {
  const text = el.assistClipIn.textContent || '';
  try {
    await navigator.clipboard.writeText(text);
    toast('Copied: paste it where you need it.');
  } catch {
    // No clipboard access here: select it for the person to copy.
    const range = document.createRange();
    range.selectNodeContents(el.assistClipIn);
    const sel = window.getSelection();
    if (sel) {
      sel.removeAllRanges();
      sel.addRange(range);
    }
    toast('Selected: copy it with your keyboard.');
  }
}

export function endAssistUi(call) {
  showClipboard(false);
  el.assistScreenPick.hidden = true;
  el.assistScreenPick.replaceChildren();
  el.assistBar.hidden = true;
  el.assistConsent.hidden = true;
  el.assistView.hidden = true;
  el.assistLocal.hidden = true;
  el.assistStart.hidden = false;
  el.assistHelper.hidden = true;
  el.assistScreen.srcObject = null;
  const shared = el.assistPreview.srcObject;
  if (shared) for (const t of shared.getTracks()) t.stop();
  el.assistPreview.srcObject = null;
  if (call && call.session) call.session.stopScreen();
  if (call && call.assist) {
    if (call.assist.layer) call.assist.layer.clear();
    if (call.assist.local) call.assist.local.clear();
  }
}

export function showAssistScreen(call, track, stream) {
  el.assistScreen.srcObject = stream;
  safePlay(el.assistScreen);
  track.addEventListener('ended', () => {
    if (el.assistScreen.srcObject === stream) el.assistScreen.srcObject = null;
  });
}

function setAssistTool(tool) {
  const call = S.call;
  if (!call) return;
  assistOf(call).tool = tool;
  for (const b of el.assistView.querySelectorAll('.tool')) b.setAttribute('aria-pressed', String(b.dataset.tool === tool));
  if (tool === 'control') el.assistCanvas.focus();
}

function sendAssistEvents(events) {
  const call = S.call;
  if (!call || !call.session) return false;
  if (call.assist && call.assist.layer) call.assist.layer.apply(events);
  return call.session.sendAssist(encodeAssist(events));
}

/** Where a pointer event falls on the shared screen, normalised to 0–65535; null outside it. */
function screenPoint(e) {
  const box = el.assistCanvas.getBoundingClientRect();
  const r = videoContentRect(el.assistScreen);
  const x = (e.clientX - box.left - r.x) / r.w;
  const y = (e.clientY - box.top - r.y) / r.h;
  if (!(x >= 0 && x <= 1 && y >= 0 && y <= 1)) return null;
  return { x: Math.round(x * 65535), y: Math.round(y * 65535) };
}

function assistPointer(e, phase) {
  const call = S.call;
  const a = call && call.assist;
  if (!a || a.role !== 'helper') return;
  const p = screenPoint(e);
  if (!p) return;
  e.preventDefault();
  if (a.tool === 'control') {
    const button = e.button === 2 ? 3 : e.button === 1 ? 2 : 1;
    if (phase === 'down') sendAssistEvents([{ type: AT.pointerMove, ...p }, { type: AT.buttonDown, button, ...p }]);
    else if (phase === 'up') sendAssistEvents([{ type: AT.buttonUp, button, ...p }]);
    else sendAssistEvents([{ type: AT.pointerMove, ...p }]);
    return;
  }
  const tool = TOOLS[a.tool] ?? TOOLS.pen;
  if (phase === 'down') {
    a.drawing = true;
    a.stroke = (a.stroke + 1) % 256;
    el.assistCanvas.setPointerCapture?.(e.pointerId);
  }
  if (!a.drawing && tool !== TOOLS.laser) return;
  if (phase === 'up') {
    a.drawing = false;
    sendAssistEvents([{ type: AT.strokePoint, stroke: a.stroke, tool, color: 0, ...p }, { type: AT.strokeEnd, stroke: a.stroke }]);
    return;
  }
  if (tool === TOOLS.laser && !a.drawing) return;
  sendAssistEvents([{ type: AT.strokePoint, stroke: a.stroke, tool, color: 0, ...p }]);
}

function assistWheel(e) {
  const a = S.call && S.call.assist;
  if (!a || a.role !== 'helper' || a.tool !== 'control') return;
  e.preventDefault();
  const unit = e.deltaMode === 1 ? 40 : e.deltaMode === 2 ? 120 : 1; // lines, pages → ~pixels of a notch
  const notch = (d) => Math.max(-2400, Math.min(2400, Math.round((d * unit * 120) / 100)));
  const dx = notch(e.deltaX);
  const dy = notch(e.deltaY);
  if (dx || dy) sendAssistEvents([{ type: AT.wheel, dx, dy }]);
}

function assistKey(e, down) {
  const a = S.call && S.call.assist;
  if (!a || a.role !== 'helper' || a.tool !== 'control') return;
  const ks = keysym(e.key);
  if (!ks) return;
  e.preventDefault();
  sendAssistEvents([{ type: down ? AT.keyDown : AT.keyUp, keysym: ks }]);
}

/** Fills the screen help log (the audit log) on the home screen. */
