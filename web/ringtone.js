// @ts-check
// Ring and ringback tones synthesised with WebAudio. Never throws: when the
// browser blocks audio (autoplay policy) the tone is simply silent.

let ctx = null;
let timer = null;
let active = null; // 'incoming' | 'ringback'
let nodes = [];

function context() {
  if (ctx) return ctx;
  const AC = window.AudioContext || /** @type {any} */ (window).webkitAudioContext;
  if (!AC) return null;
  try {
    ctx = new AC();
  } catch {
    ctx = null;
  }
  return ctx;
}

/** Call from a user gesture (e.g. sign-in click) so later rings may play. */
export function unlockAudio() {
  try {
    const c = context();
    if (c && c.state === 'suspended') c.resume().catch(() => {});
  } catch {
    /* ignore */
  }
}

function tone(c, freq, start, dur, peak) {
  const osc = c.createOscillator();
  const gain = c.createGain();
  osc.type = 'sine';
  osc.frequency.value = freq;
  gain.gain.setValueAtTime(0, start);
  gain.gain.linearRampToValueAtTime(peak, start + 0.02);
  gain.gain.setValueAtTime(peak, start + dur - 0.05);
  gain.gain.linearRampToValueAtTime(0, start + dur);
  osc.connect(gain).connect(c.destination);
  osc.start(start);
  osc.stop(start + dur + 0.02);
  nodes.push(osc);
  osc.onended = () => {
    nodes = nodes.filter((n) => n !== osc);
    try { gain.disconnect(); } catch { /* ignore */ }
  };
}

// A soft rising three-note chime, twice, then a pause.
function ringBurst(c) {
  const t = c.currentTime + 0.05;
  const notes = [659.25, 783.99, 1046.5];
  for (let r = 0; r < 2; r++) {
    notes.forEach((f, i) => tone(c, f, t + r * 0.75 + i * 0.16, 0.22, 0.16));
  }
}

// Ringback heard by the caller: 425 Hz, one second on.
function ringbackBurst(c) {
  const t = c.currentTime + 0.05;
  tone(c, 425, t, 1.0, 0.06);
}

// Call-waiting: two short beeps, quiet, so the current call stays audible.
function waitingBurst(c) {
  const t = c.currentTime + 0.05;
  tone(c, 880, t, 0.15, 0.05);
  tone(c, 880, t + 0.3, 0.15, 0.05);
}

const KINDS = {
  incoming: { burst: ringBurst, period: 3000 },
  ringback: { burst: ringbackBurst, period: 4000 },
  waiting: { burst: waitingBurst, period: 3500 },
};

export function startRing(kind = 'incoming') {
  if (active === kind) return;
  stopRing();
  active = kind;
  try {
    const c = context();
    if (!c) return;
    if (c.state === 'suspended') c.resume().catch(() => {});
    const { burst, period } = KINDS[kind] || KINDS.incoming;
    const play = () => {
      try {
        if (c.state === 'running') burst(c);
      } catch {
        /* ignore */
      }
    };
    play();
    timer = setInterval(play, period);
    if (kind === 'incoming' && navigator.vibrate) {
      try { navigator.vibrate([400, 200, 400]); } catch { /* ignore */ }
    }
  } catch {
    /* silent ring */
  }
}

export function stopRing() {
  active = null;
  clearInterval(timer);
  timer = null;
  for (const n of nodes) {
    try { n.stop(); } catch { /* ignore */ }
  }
  nodes = [];
  try { if (navigator.vibrate) navigator.vibrate(0); } catch { /* ignore */ }
}
