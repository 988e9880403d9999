// @ts-check
// Active speaker (docs/protocol.md, "Simulcast, view and speakers"): the
// server's `speakers` message lists who is heard, loudest first, and comes
// only when that changes. The loudest is highlighted at once; a short pause
// keeps the highlight (the gap between two words is not silence), and only
// someone who stays the loudest for promoteAfterMs is moved up among the
// tiles, so the grid does not reshuffle at every message.

export class SpeakerTracker {
  /**
   * @param {object} [options]
   * @param {(user: string) => void} [options.onHighlight] the loudest now ('' = nobody)
   * @param {(user: string) => void} [options.onPromote] someone who stayed the loudest
   * @param {number} [options.promoteAfterMs]
   * @param {number} [options.holdMs]
   */
  constructor({ onHighlight = () => {}, onPromote = () => {}, promoteAfterMs = 1000, holdMs = 700 } = {}) {
    this.onHighlight = onHighlight;
    this.onPromote = onPromote;
    this.promoteAfterMs = promoteAfterMs;
    this.holdMs = holdMs;
    this.current = ''; // highlighted user, '' = nobody
    this.candidate = ''; // loudest now, waiting to be promoted
    this.levels = []; // the last list: [{user, level}]
    this.clearTimer = null;
    this.promoteTimer = null;
  }

  /** Takes a `speakers` message's list. */
  update(list) {
    const speakers = (Array.isArray(list) ? list : [])
      .filter((s) => s && typeof s.user === 'string' && s.user)
      .map((s) => ({ user: s.user, level: Number.isFinite(s.level) ? s.level : 0 }));
    this.levels = speakers;
    const loudest = speakers.length ? speakers[0].user : '';
    if (loudest) {
      clearTimeout(this.clearTimer);
      this.clearTimer = null;
      this.highlight(loudest);
    } else if (this.current && !this.clearTimer) {
      this.clearTimer = setTimeout(() => {
        this.clearTimer = null;
        this.highlight('');
      }, this.holdMs);
    }
    if (loudest !== this.candidate) {
      clearTimeout(this.promoteTimer);
      this.promoteTimer = null;
      this.candidate = loudest;
      if (loudest) {
        this.promoteTimer = setTimeout(() => {
          this.promoteTimer = null;
          if (this.candidate === loudest) this.onPromote(loudest);
        }, this.promoteAfterMs);
      }
    }
  }

  highlight(user) {
    if (user === this.current) return;
    this.current = user;
    this.onHighlight(user);
  }

  /** Forgets everything (the call ended). */
  stop() {
    clearTimeout(this.clearTimer);
    clearTimeout(this.promoteTimer);
    this.clearTimer = this.promoteTimer = null;
    this.candidate = '';
    this.levels = [];
    this.highlight('');
  }
}
