// The WebSocket: token in the query string, {"action": "status"} after every (re)connect, and
// reconnection with exponential backoff (0.5 s doubling to 10 s, with jitter) after any close
// the dashboard did not ask for, e.g. a server restart.

export const BACKOFF_MIN_MS = 500;
export const BACKOFF_MAX_MS = 10000;
// A status reply can be lost (the management API post timed out on a busy server, or ERROR
// UNAVAILABLE while Postgres was away): ask again until it comes, a bounded number of times.
export const STATUS_RETRY_MS = 3000;
export const STATUS_RETRIES = 10;

export class LiveConnection {
  constructor(url, getToken) {
    this.url = url;
    this.getToken = getToken;
    this.listeners = new Set();
    this.state = "idle";
    this.attempt = 0;
    this.connects = 0;
    this.socket = null;
    this.timer = null;
    this.statusTimer = null;
    this.stopped = false;
  }

  subscribe(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(message) {
    for (const listener of this.listeners) listener(message);
  }

  setState(state) {
    this.state = state;
    this.emit({ type: "@state", data: { state, attempt: this.attempt, connects: this.connects } });
  }

  start() {
    this.stopped = false;
    this.open();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.statusTimer);
    if (this.socket) this.socket.close(1000, "signed out");
    this.socket = null;
    this.setState("idle");
  }

  send(message) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify(message));
      return true;
    }
    return false;
  }

  open() {
    const token = this.getToken();
    if (!token || this.stopped) return;
    const url = new URL(this.url);
    url.searchParams.set("token", token);
    this.setState(this.connects ? "reconnecting" : "connecting");
    const socket = new WebSocket(url.toString());
    this.socket = socket;
    socket.addEventListener("open", () => {
      this.attempt = 0;
      this.connects += 1;
      this.setState("open");
      this.askStatus(socket);
    });
    socket.addEventListener("message", (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      if (message && typeof message.type === "string") {
        const code = message.data && message.data.code;
        if (message.type === "ROUTING_STATUS" || (message.type === "ERROR" && code === "UNKNOWN_ACTION")) {
          clearInterval(this.statusTimer);
        }
        this.emit(message);
      }
    });
    socket.addEventListener("close", () => {
      if (this.socket !== socket || this.stopped) return;
      this.socket = null;
      this.scheduleReconnect();
    });
  }

  askStatus(socket) {
    clearInterval(this.statusTimer);
    socket.send(JSON.stringify({ action: "status" }));
    let tries = 0;
    this.statusTimer = setInterval(() => {
      tries += 1;
      if (tries > STATUS_RETRIES || this.socket !== socket || socket.readyState !== WebSocket.OPEN) {
        clearInterval(this.statusTimer);
        return;
      }
      socket.send(JSON.stringify({ action: "status" }));
    }, STATUS_RETRY_MS);
  }

  scheduleReconnect() {
    const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** this.attempt);
    this.attempt += 1;
    this.setState("reconnecting");
    this.timer = setTimeout(() => this.open(), delay * (0.75 + Math.random() * 0.5));
  }
}
