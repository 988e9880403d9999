// @ts-check
// Local capture: getUserMedia, device lists and device switching.

const PREF = 'tandem.devices';

// Every local track this page opened, so that it can tell (and a test can
// check) that none is left running once a call no longer needs it.
const opened = new Set();

function remember(stream) {
  for (const t of stream.getTracks()) opened.add(t);
  return stream;
}

/** How many camera and microphone tracks this page holds open now. */
export function liveLocalTracks() {
  let n = 0;
  for (const t of opened) {
    if (t.readyState === 'live') n++;
    else opened.delete(t);
  }
  return n;
}

function prefs() {
  try {
    return JSON.parse(localStorage.getItem(PREF) || '{}') || {};
  } catch {
    return {};
  }
}

function savePref(kind, deviceId) {
  try {
    const p = prefs();
    p[kind] = deviceId;
    localStorage.setItem(PREF, JSON.stringify(p));
  } catch {
    /* ignore */
  }
}

export class MediaError extends Error {
  constructor(message, cause) {
    super(message);
    this.name = 'MediaError';
    this.cause = cause;
  }
}

function describe(err, video) {
  const what = video ? 'camera and microphone' : 'microphone';
  switch (err && err.name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return `Tandem needs access to your ${what}. Allow it in the browser's site settings and try again.`;
    case 'NotFoundError':
    case 'OverconstrainedError':
      return `No ${video ? 'camera or microphone' : 'microphone'} found.`;
    case 'NotReadableError':
    case 'AbortError':
      return `Your ${what} could not be started — is another app using it?`;
    case 'TypeError':
      return 'This page cannot use the camera or microphone (it needs HTTPS or localhost).';
    default:
      return `Could not start your ${what}.`;
  }
}

function audioConstraints(deviceId) {
  const c = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };
  if (deviceId) c.deviceId = { ideal: deviceId };
  return c;
}

// ?lite=1 asks for a small, slow camera picture: for weak devices, crowded
// rooms and automated tests running many browsers on one machine.
function lite() {
  try {
    return new URLSearchParams(location.search).get('lite') === '1';
  } catch {
    return false;
  }
}

// ?camera=WxH asks the camera for that size (e.g. 640x360): for devices,
// and machines running several browsers at once, that cannot spare the
// encoders of a 720p picture; simulcast still sends it in three sizes.
function cameraSize() {
  try {
    const m = /^(\d{2,4})x(\d{2,4})$/.exec(new URLSearchParams(location.search).get('camera') || '');
    return m ? { width: Number(m[1]), height: Number(m[2]) } : null;
  } catch {
    return null;
  }
}

function videoConstraints(deviceId) {
  const size = cameraSize();
  const c = lite()
    ? { width: { ideal: 320 }, height: { ideal: 240 }, frameRate: { ideal: 15 } }
    : size
      ? { width: { ideal: size.width }, height: { ideal: size.height }, frameRate: { ideal: 30 } }
      : { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } };
  if (deviceId) c.deviceId = { ideal: deviceId };
  return c;
}

/** Opens the microphone (and camera for video calls). Throws MediaError. */
export async function openLocalMedia(video) {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    throw new MediaError(describe({ name: 'TypeError' }, video));
  }
  const p = prefs();
  try {
    return remember(await navigator.mediaDevices.getUserMedia({
      audio: audioConstraints(p.audioinput),
      video: video ? videoConstraints(p.videoinput) : false,
    }));
  } catch (err) {
    if (video && err && (err.name === 'NotFoundError' || err.name === 'NotReadableError')) {
      // No usable camera: carry on with audio rather than failing the call.
      try {
        const s = remember(await navigator.mediaDevices.getUserMedia({ audio: audioConstraints(p.audioinput) }));
        s.cameraUnavailable = true;
        return s;
      } catch {
        /* report the original error */
      }
    }
    throw new MediaError(describe(err, video), err);
  }
}

/** Opens one new track of the given kind ('audio'|'video') from deviceId. */
export async function openTrack(kind, deviceId) {
  const constraints =
    kind === 'audio'
      ? { audio: { ...audioConstraints(), deviceId: { exact: deviceId } } }
      : { video: { ...videoConstraints(), deviceId: { exact: deviceId } } };
  try {
    const s = remember(await navigator.mediaDevices.getUserMedia(constraints));
    const track = kind === 'audio' ? s.getAudioTracks()[0] : s.getVideoTracks()[0];
    if (!track) throw new Error('no track');
    savePref(kind === 'audio' ? 'audioinput' : 'videoinput', deviceId);
    return track;
  } catch (err) {
    throw new MediaError(describe(err, kind === 'video'), err);
  }
}

/** {audioinput: [{deviceId,label}], videoinput: [...]} */
export async function listDevices() {
  const out = { audioinput: [], videoinput: [] };
  if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return out;
  try {
    const all = await navigator.mediaDevices.enumerateDevices();
    for (const d of all) {
      if (!out[d.kind] || !d.deviceId) continue;
      const n = out[d.kind].length + 1;
      out[d.kind].push({
        deviceId: d.deviceId,
        label: d.label || (d.kind === 'audioinput' ? `Microphone ${n}` : `Camera ${n}`),
      });
    }
  } catch {
    /* leave the lists empty */
  }
  return out;
}

export function stopStream(stream) {
  if (!stream) return;
  for (const t of stream.getTracks()) {
    try { t.stop(); } catch { /* ignore */ }
  }
}
