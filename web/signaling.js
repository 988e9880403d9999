// @ts-check
// The signaling WebSocket (docs/protocol.md): hello/welcome, request ids
// with ack/error, reconnect with backoff. Emits events:
//   'state'    detail {state: 'connecting'|'open'|'reconnecting'|'closed', attempt, delayMs}
//   'welcome'  detail = welcome message
//   'message'  detail = any other server message (not ack/error for a request)
//   'fatal'    detail {code, message}: the session cannot continue (no reconnect)
//   'dropped'  the socket closed after a welcome (calls on it are gone)

const FATAL = new Set(['unauthorized', 'token_expired', 'replaced', 'hello_required']);

export class SignalingError extends Error {
  constructor(code, message, msg = null) {
    super(message || code);
    this.name = 'SignalingError';
    this.code = code;
    this.msg = msg;
  }
}

export class Signaling extends EventTarget {
  /**
   * @param {string} token access token
   * @param {{url?: string}} [options] url: the WebSocket, by default /ws of this page's host
   */
  constructor(token, { url } = {}) {
    super();
    this.token = token;
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    this.url = url || `${proto}//${location.host}/ws`;
    this.ws = null;
    this.welcome = null;
    this.stopped = false;
    this.attempt = 0;
    /** @type {((msg: object) => void) | null} told of every message sent, for tracing */
    this.onSent = null;
    this.seq = 0;
    this.pending = new Map(); // id → {resolve, reject, timer}
    this.reconnectTimer = null;
    this.urgent = false; // a call waits for this socket: reconnect quickly
    this.pingTimer = null;
    this.helloTimer = null;
  }

  get connected() {
    return !!(this.ws && this.ws.readyState === WebSocket.OPEN && this.welcome);
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  start() {
    this.stopped = false;
    this.open();
  }

  open() {
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    this.welcome = null;
    this.emit('state', { state: this.attempt === 0 ? 'connecting' : 'reconnecting', attempt: this.attempt });
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (err) {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      if (this.ws !== ws) return;
      this.rawSend({ v: 1, type: 'hello', token: this.token });
      // The server answers a hello quickly; a silent socket is retried.
      this.helloTimer = setTimeout(() => {
        if (this.ws === ws && !this.welcome) ws.close(4000, 'no welcome');
      }, 10000);
    };
    ws.onmessage = (ev) => {
      if (this.ws !== ws) return;
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        console.warn('tandem: unreadable message from server', ev.data);
        return;
      }
      if (!msg || typeof msg !== 'object') return;
      try {
        this.handle(msg);
      } catch (err) {
        console.error('tandem: error handling', msg.type, err);
      }
    };
    ws.onerror = () => {
      /* followed by onclose */
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      clearTimeout(this.helloTimer);
      clearInterval(this.pingTimer);
      const hadWelcome = !!this.welcome;
      this.welcome = null;
      this.failPending(new SignalingError('disconnected', 'Connection to server lost'));
      if (hadWelcome) this.emit('dropped', { code: ev.code });
      if (this.stopped) {
        this.emit('state', { state: 'closed' });
        return;
      }
      if (ev.code === 4001 || ev.code === 4009) {
        // The error message normally arrives first and stops us; this is the fallback.
        this.fatal(ev.code === 4009 ? 'replaced' : 'unauthorized', ev.reason || '');
        return;
      }
      this.scheduleReconnect();
    };
  }

  handle(msg) {
    switch (msg.type) {
      case 'welcome':
        clearTimeout(this.helloTimer);
        this.welcome = msg;
        this.attempt = 0;
        clearInterval(this.pingTimer);
        this.pingTimer = setInterval(() => this.rawSend({ type: 'ping' }), 25000);
        this.emit('state', { state: 'open' });
        this.emit('welcome', msg);
        return;
      case 'pong':
        return;
      case 'ice_servers':
        // Fresh TURN credentials before the old ones expire.
        if (this.welcome && Array.isArray(msg.ice_servers)) this.welcome.ice_servers = msg.ice_servers;
        this.emit('ice_servers', msg.ice_servers || []);
        return;
      case 'ack': {
        const p = msg.re && this.pending.get(msg.re);
        if (p) {
          this.pending.delete(msg.re);
          clearTimeout(p.timer);
          p.resolve(msg);
        }
        return;
      }
      case 'error': {
        if (FATAL.has(msg.code) && (!this.welcome || msg.code !== 'hello_required')) {
          this.fatal(msg.code, msg.message);
          return;
        }
        const p = msg.re && this.pending.get(msg.re);
        if (p) {
          this.pending.delete(msg.re);
          clearTimeout(p.timer);
          p.reject(new SignalingError(msg.code, msg.message, msg));
          return;
        }
        this.emit('message', msg);
        return;
      }
      default:
        this.emit('message', msg);
    }
  }

  fatal(code, message) {
    if (this.stopped) return;
    this.stop();
    this.emit('fatal', { code, message });
  }

  scheduleReconnect() {
    this.attempt += 1;
    // During a call the server holds this device's place only for its
    // grace window (20 s by default): retry at least every 2 s then.
    const cap = this.urgent ? 2000 : 15000;
    const base = Math.min(cap, 500 * 2 ** Math.min(this.attempt - 1, 5));
    const delayMs = Math.round(base * (0.75 + Math.random() * 0.5));
    this.emit('state', { state: 'reconnecting', attempt: this.attempt, delayMs });
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => this.open(), delayMs);
  }

  /** Reconnect now (e.g. when the browser comes back online). */
  retryNow() {
    if (this.stopped || this.ws) return;
    this.open();
  }

  rawSend(msg) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    try {
      this.ws.send(JSON.stringify(msg));
      if (this.onSent) this.onSent(msg);
      return true;
    } catch {
      return false;
    }
  }

  /** Sends a message without waiting for an answer; false if not connected. */
  send(msg) {
    if (!this.welcome) return false;
    return this.rawSend({ v: 1, ...msg });
  }

  /** Sends a request and resolves with the ack, or rejects with a SignalingError. */
  request(msg, timeoutMs = 10000) {
    return new Promise((resolve, reject) => {
      if (!this.connected) {
        reject(new SignalingError('disconnected', 'Not connected to the server'));
        return;
      }
      const id = `r${++this.seq}`;
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new SignalingError('timeout', 'The server did not answer'));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      if (!this.rawSend({ v: 1, ...msg, id })) {
        clearTimeout(timer);
        this.pending.delete(id);
        reject(new SignalingError('disconnected', 'Not connected to the server'));
      }
    });
  }

  failPending(err) {
    for (const [, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.pending.clear();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.helloTimer);
    clearInterval(this.pingTimer);
    const ws = this.ws;
    this.ws = null;
    this.welcome = null;
    this.failPending(new SignalingError('closed', 'Signed out'));
    if (ws) {
      try { ws.close(1000, 'bye'); } catch { /* ignore */ }
    }
  }
}
