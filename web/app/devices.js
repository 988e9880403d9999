// @ts-check
// Choosing the camera, microphone and speaker.
import { openTrack, listDevices } from '../media.js';
import { el, toast, safePlay } from '../ui.js';
import { closeAddPanel } from './group.js';
import { S, errorText } from './state.js';

export async function toggleDevices() {
  const open = el.devicesPanel.hidden;
  if (open) closeAddPanel();
  el.devicesPanel.hidden = !open;
  el.devices.setAttribute('aria-expanded', String(open));
  if (open) {
    await fillDeviceLists();
    (S.call && S.call.video ? el.selectCamera : el.selectMic).focus();
  }
}

export async function fillDeviceLists() {
  const call = S.call;
  const lists = await listDevices();
  const current = (kind) => {
    const t = call && call.stream && (kind === 'audio' ? call.stream.getAudioTracks()[0] : call.stream.getVideoTracks()[0]);
    try {
      return t ? t.getSettings().deviceId : '';
    } catch {
      return '';
    }
  };
  const fill = (select, items, selected, empty) => {
    select.replaceChildren();
    if (!items.length) {
      const o = new Option(empty, '');
      o.disabled = true;
      select.append(o);
      select.disabled = true;
      return;
    }
    select.disabled = false;
    for (const d of items) select.append(new Option(d.label, d.deviceId, false, d.deviceId === selected));
  };
  fill(el.selectMic, lists.audioinput, current('audio'), 'No microphone found');
  fill(el.selectCamera, lists.videoinput, current('video'), 'No camera found');
  el.fieldCamera.hidden = !(call && call.video);
}

export async function switchDevice(kind, deviceId) {
  const call = S.call;
  if (!call || !call.stream || !deviceId) return;
  const old = kind === 'audio' ? call.stream.getAudioTracks()[0] : call.stream.getVideoTracks()[0];
  try {
    if (old && old.getSettings().deviceId === deviceId) return;
  } catch {
    /* ignore */
  }
  let track;
  try {
    track = await openTrack(kind, deviceId);
  } catch (err) {
    toast(errorText(err));
    fillDeviceLists().catch(() => {});
    return;
  }
  if (S.call !== call || !call.stream) {
    track.stop();
    return;
  }
  track.enabled = kind === 'audio' ? call.audioOn : call.videoOn;
  try {
    if (call.session) await call.session.replaceTrack(kind, track);
  } catch (err) {
    track.stop();
    toast(`Could not switch ${kind === 'audio' ? 'microphone' : 'camera'}: ${errorText(err)}`);
    return;
  }
  if (old) {
    call.stream.removeTrack(old);
    old.stop();
  }
  call.stream.addTrack(track);
  if (kind === 'video') {
    el.localVideo.srcObject = call.stream;
    safePlay(el.localVideo);
  }
}
