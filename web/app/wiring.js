// @ts-check
// Buttons, forms and page events wired to the features above.
import { el, toast, hideBanner } from '../ui.js';
import { wireAccount } from './account.js';
import { settleSwitch } from './boot.js';
import { sendSig } from './connection.js';
import { downloadMyData, eraseAll, loadAssistLog } from './data.js';
import { fillDeviceLists, switchDevice, toggleDevices } from './devices.js';
import { addPerson, closeAddPanel, toggleAddPanel } from './group.js';
import { wireAssist } from './help.js';
import { acceptIncoming, declineIncoming } from './incoming.js';
import { hangup } from './lifecycle.js';
import { pullCall, renderActiveCall, toggleMovePanel } from './moving.js';
import { placeCall } from './outgoing.js';
import { togglePopout } from './popout.js';
import { isSpace, pttActive, pttDown, pttUp, typingIn } from './ptt.js';
import { loadHistory } from './recent.js';
import { joinRoom } from './rooms.js';
import { toggleCamera, toggleMute } from './screen.js';
import { onSignInSubmit, setFormError, signOut } from './signin.js';
import { S, errorText, pageState } from './state.js';

export function wire() {
  wireAccount();
  el.signinForm.addEventListener('submit', (ev) => {
    onSignInSubmit(ev).catch((err) => setFormError(el.signinError, errorText(err)));
  });
  el.signout.addEventListener('click', () => signOut(''));
  el.switchUserYes.addEventListener('click', () => settleSwitch && settleSwitch(true));
  el.switchUserNo.addEventListener('click', () => settleSwitch && settleSwitch(false));
  el.bannerClose.addEventListener('click', hideBanner);

  el.callForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    placeCall(el.callTo.value, true).catch((err) => toast(errorText(err)));
  });
  el.callAudio.addEventListener('click', () => {
    placeCall(el.callTo.value, false).catch((err) => toast(errorText(err)));
  });
  el.callHelp.addEventListener('click', () => {
    // An audio call that asks to help with their screen once answered.
    placeCall(el.callTo.value, false, { help: true }).catch((err) => toast(errorText(err)));
  });
  el.exportData.addEventListener('click', () => { downloadMyData(); });
  el.eraseData.addEventListener('click', () => {
    el.eraseConfirmRow.hidden = false;
    el.eraseConfirm.focus();
  });
  el.eraseCancel.addEventListener('click', () => { el.eraseConfirmRow.hidden = true; });
  el.eraseConfirm.addEventListener('click', () => { eraseAll(); });
  el.assistLogBox.addEventListener('toggle', () => {
    if (el.assistLogBox.open) loadAssistLog();
  });
  el.callTo.addEventListener('input', () => setFormError(el.callError, ''));
  el.roomForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    joinRoom(el.roomName.value, { ptt: el.roomPtt.checked }).catch((err) => toast(errorText(err)));
  });
  el.roomName.addEventListener('input', () => setFormError(el.roomError, ''));

  el.add.addEventListener('click', toggleAddPanel);
  el.moveHere.addEventListener('click', () => pullCall(false));
  el.listenHere.addEventListener('click', () => pullCall(true));
  el.takeCall.addEventListener('click', () => pullCall(false));
  el.activeCallDismiss.addEventListener('click', () => {
    S.pushOffer = null;
    renderActiveCall();
  });
  el.moveTo.addEventListener('click', toggleMovePanel);
  wireAssist();
  el.addPanel.addEventListener('submit', (ev) => {
    ev.preventDefault();
    addPerson(el.addTo.value).catch((err) => setFormError(el.addError, errorText(err)));
  });
  el.addTo.addEventListener('input', () => setFormError(el.addError, ''));

  // Hold to talk: press = ask for the floor, let go (or slide off) = give it back.
  el.ptt.addEventListener('pointerdown', (ev) => {
    if (ev.pointerType === 'mouse' && ev.button !== 0) return;
    ev.preventDefault();
    pttDown();
  });
  for (const type of ['pointerup', 'pointercancel', 'pointerleave']) el.ptt.addEventListener(type, pttUp);
  el.ptt.addEventListener('contextmenu', (ev) => ev.preventDefault()); // long press on touch screens
  document.addEventListener('keydown', (ev) => {
    if (!isSpace(ev) || !pttActive() || typingIn(ev.target)) return;
    ev.preventDefault();
    if (!ev.repeat) pttDown();
  });
  document.addEventListener('keyup', (ev) => {
    if (!isSpace(ev) || !pttActive() || typingIn(ev.target)) return;
    ev.preventDefault();
    pttUp();
  });
  window.addEventListener('blur', pttUp);
  el.historyRefresh.addEventListener('click', loadHistory);

  el.accept.addEventListener('click', () => {
    acceptIncoming().catch((err) => toast(errorText(err)));
  });
  el.decline.addEventListener('click', declineIncoming);

  el.hangup.addEventListener('click', hangup);
  el.mute.addEventListener('click', toggleMute);
  el.camera.addEventListener('click', toggleCamera);
  el.devices.addEventListener('click', () => {
    toggleDevices().catch((err) => toast(errorText(err)));
  });
  el.popout.addEventListener('click', () => {
    togglePopout().catch((err) => toast(errorText(err)));
  });
  el.selectMic.addEventListener('change', () => {
    switchDevice('audio', el.selectMic.value).catch((err) => toast(errorText(err)));
  });
  el.selectCamera.addEventListener('change', () => {
    switchDevice('video', el.selectCamera.value).catch((err) => toast(errorText(err)));
  });
  el.screenCall.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && !el.devicesPanel.hidden) {
      el.devicesPanel.hidden = true;
      el.devices.setAttribute('aria-expanded', 'false');
      el.devices.focus();
    } else if (ev.key === 'Escape' && !el.addPanel.hidden) {
      closeAddPanel();
      el.add.focus();
    }
  });
  el.tiles.addEventListener('click', () => {
    if (!el.devicesPanel.hidden) {
      el.devicesPanel.hidden = true;
      el.devices.setAttribute('aria-expanded', 'false');
    }
    closeAddPanel();
  });
  if (navigator.mediaDevices && navigator.mediaDevices.addEventListener) {
    navigator.mediaDevices.addEventListener('devicechange', () => {
      if (!el.devicesPanel.hidden) fillDeviceLists().catch(() => {});
    });
  }

  window.addEventListener('online', () => {
    if (S.sig) S.sig.retryNow();
    // A new network: media needs new paths too.
    if (S.call && S.call.session) S.call.session.restartIce();
  });
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible' && pageState() === 'idle') loadHistory();
  });
  window.addEventListener('pagehide', () => {
    // Leaving the page: end the call cleanly rather than as a lost connection.
    if (S.call && S.call.callId) sendSig({ type: 'hangup', call_id: S.call.callId });
  });
  window.addEventListener('unhandledrejection', (ev) => {
    console.error('tandem: unhandled', ev.reason);
    toast(`Something went wrong: ${errorText(ev.reason)}`);
    ev.preventDefault();
  });
}
