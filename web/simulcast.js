// @ts-check
// Simulcast publishing (docs/protocol.md, "Simulcast, view and speakers"):
// the camera goes out as up to three encodings of one track, each with its
// own RTP stream id (rid), and the SFU forwards to each viewer the one that
// fits their tile and bandwidth. The server's `layers` message says which
// rids anybody receives; the others are paused here, so they cost neither
// CPU nor uplink.

// Full resolution first: a peer that does not accept simulcast (an answer
// without a=simulcast) makes the browser send only the first encoding, and
// that one alone must give a good picture. Chrome encodes the layers in any
// order; the rid, not the position, names a layer.
export const LAYERS = [
  { rid: 'f', scaleResolutionDownBy: 1, maxBitrate: 1_500_000 },
  { rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 150_000 },
];

function param(name) {
  try {
    return new URLSearchParams(location.search).get(name);
  } catch {
    return null;
  }
}

/**
 * Whether the camera is published as simulcast. ?simulcast=0 turns it off;
 * so does ?lite=1, whose small picture (320×240) is already the lowest
 * layer, and whose weak devices cannot spare the extra encoders.
 */
export function simulcastEnabled() {
  return param('simulcast') !== '0' && param('lite') !== '1';
}

/** sendEncodings for the camera's transceiver (undefined = the browser's single default). */
export function cameraEncodings() {
  if (!simulcastEnabled()) return undefined;
  return LAYERS.map((l) => ({ ...l, active: true }));
}

/**
 * Applies a `layers` message to sender: each rid named in active is turned
 * on or off; rids the server does not name are left as they are. Returns
 * true when anything changed.
 */
export async function applyLayers(sender, active) {
  if (!sender || !active || typeof active !== 'object') return false;
  const params = sender.getParameters();
  const encs = params.encodings || [];
  let changed = false;
  for (const enc of encs) {
    if (!enc.rid || typeof active[enc.rid] !== 'boolean') continue;
    if (enc.active !== active[enc.rid]) {
      enc.active = active[enc.rid];
      changed = true;
    }
  }
  if (changed) await sender.setParameters(params);
  return changed;
}
