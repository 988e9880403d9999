// @ts-check
// The call screen's controls: mute, camera, timer and the media state sent to others.
import { el, toast, formatDuration, setIcon, safePlay } from '../ui.js';
import { sendSig } from './connection.js';
import { callTitle, closeAddPanel, renderWatchers } from './group.js';
import { S, tiles } from './state.js';

export function showCallScreen(call) {
  const s = el.screenCall;
  s.dataset.mode = 'calling';
  s.dataset.video = String(call.video);
  s.dataset.ptt = 'false';
  el.callPeer.textContent = callTitle(call);
  el.callInfo.textContent = call.room ? 'Joining…' : call.direction === 'outgoing' ? 'Calling…' : 'Connecting…';
  el.callQuality.hidden = true;
  renderWatchers(call);
  tiles.clear();
  if (!call.room) {
    tiles.pin(call.peer);
    tiles.setStatusText(call.peer, call.direction === 'outgoing' ? `Calling ${call.peer}…` : 'Connecting…');
  }
  el.hangup.setAttribute(
    'aria-label',
    call.room ? `Leave ${call.room}` : call.direction === 'outgoing' ? 'Cancel call' : 'Hang up',
  );
  el.add.hidden = true;
  closeAddPanel();
  el.pttPanel.hidden = true;
  updateMuteButtons(call);
  el.local.classList.remove('off');
  el.devicesPanel.hidden = true;
  el.devices.setAttribute('aria-expanded', 'false');
  s.hidden = false;
  setTimeout(() => {
    if (!s.hidden) el.hangup.focus();
  }, 0);
}

export function attachLocal(call) {
  if (!call.stream) return;
  if (call.video && call.stream.cameraUnavailable) {
    call.videoOn = false;
    toast('No camera available — continuing with audio only.');
  }
  for (const t of call.stream.getAudioTracks()) t.enabled = call.audioOn;
  for (const t of call.stream.getVideoTracks()) t.enabled = call.videoOn;
  if (call.video) {
    el.localVideo.srcObject = call.stream;
    safePlay(el.localVideo);
  }
  updateMuteButtons(call);
}

export function startTimer(call) {
  clearInterval(call.timer);
  const tick = () => {
    el.callInfo.textContent = formatDuration(Date.now() - call.answeredAt);
  };
  tick();
  call.timer = setInterval(tick, 1000);
}

function updateMuteButtons(call) {
  el.mute.setAttribute('aria-pressed', String(!call.audioOn));
  el.mute.setAttribute('aria-label', call.audioOn ? 'Mute microphone' : 'Unmute microphone');
  el.mute.title = call.audioOn ? 'Mute' : 'Unmute';
  setIcon(el.mute.firstElementChild, call.audioOn ? 'mic' : 'micOff');
  el.camera.setAttribute('aria-pressed', String(!call.videoOn));
  el.camera.setAttribute('aria-label', call.videoOn ? 'Turn camera off' : 'Turn camera on');
  el.camera.title = call.videoOn ? 'Camera off' : 'Camera on';
  setIcon(el.camera.firstElementChild, call.videoOn ? 'video' : 'videoOff');
  el.local.classList.toggle('off', !call.videoOn);
}

export function sendMediaState(call, { force = false } = {}) {
  if (!call.callId || call.listening) return;
  const audio = call.audioOn;
  const video = call.video && call.videoOn;
  if (!force && call.mediaSent.audio === audio && call.mediaSent.video === video) return;
  if (sendSig({ type: 'media', call_id: call.callId, audio, video })) call.mediaSent = { audio, video };
}

export function toggleMute() {
  const call = S.call;
  if (!call) return;
  call.audioOn = !call.audioOn;
  if (call.stream) for (const t of call.stream.getAudioTracks()) t.enabled = call.audioOn;
  updateMuteButtons(call);
  sendMediaState(call);
}

export function toggleCamera() {
  const call = S.call;
  if (!call || !call.video) return;
  if (call.stream && call.stream.getVideoTracks().length === 0) {
    toast('No camera available.');
    return;
  }
  call.videoOn = !call.videoOn;
  if (call.stream) for (const t of call.stream.getVideoTracks()) t.enabled = call.videoOn;
  updateMuteButtons(call);
  sendMediaState(call);
}
