import { render } from "preact";
import { useEffect, useMemo, useState } from "preact/hooks";
import "./style.css";
import { createApi } from "./api.js";
import {
  cognitoSignIn,
  completeCognitoSignIn,
  forgetSession,
  localSignIn,
  signOutUrl,
  storedSession,
} from "./auth.js";
import { LiveConnection } from "./live.js";
import { html } from "./ui.js";
import { TicketView } from "./views/ticket.js";
import { BlotterView } from "./views/blotter.js";
import { BrokersView } from "./views/brokers.js";
import { AnalyticsView } from "./views/analytics.js";
import { OperatorView } from "./views/operator.js";

const VIEWS = [
  { id: "ticket", title: "Order ticket", component: TicketView },
  { id: "blotter", title: "Blotter", component: BlotterView },
  { id: "brokers", title: "Brokers", component: BrokersView },
  { id: "analytics", title: "Analytics", component: AnalyticsView },
  { id: "operator", title: "Operator", component: OperatorView },
];

function currentView() {
  const id = window.location.hash.replace(/^#\/?/, "");
  return VIEWS.find((v) => v.id === id) || VIEWS[0];
}

function SignIn({ config, onSession, notice }) {
  const [user, setUser] = useState("trader-1");
  const [groups, setGroups] = useState({ TRADER: true, ADMIN: false });
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  if (config.auth === "cognito") {
    return html`<main id="main" class="signin">
      <h1>Order router</h1>
      ${notice ? html`<p class="notice error" role="alert">${notice}</p>` : null}
      <p>Sign in with your trader or operator account.</p>
      <button type="button" class="primary" onClick=${() => cognitoSignIn(config)}>Sign in</button>
    </main>`;
  }
  async function submit(event) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const chosen = Object.keys(groups).filter((g) => groups[g]);
      onSession(await localSignIn(config, user.trim(), chosen));
    } catch (exc) {
      setError(exc.message);
    } finally {
      setBusy(false);
    }
  }
  return html`<main id="main" class="signin">
    <h1>Order router</h1>
    <p>Local mode: the local issuer signs a token for any user you choose.</p>
    ${notice ? html`<p class="notice error" role="alert">${notice}</p>` : null}
    <form onSubmit=${submit} aria-label="Local sign-in">
      <label for="signin-user">User id</label>
      <input id="signin-user" name="user" value=${user} required maxlength="64" autocomplete="username"
        onInput=${(e) => setUser(e.currentTarget.value)} />
      <fieldset>
        <legend>Groups</legend>
        ${["TRADER", "ADMIN"].map(
          (g) => html`<label class="inline"><input type="checkbox" name="groups" value=${g} checked=${groups[g]}
            onChange=${(e) => setGroups({ ...groups, [g]: e.currentTarget.checked })} /> ${g}</label>`,
        )}
      </fieldset>
      ${error ? html`<p class="notice error" role="alert">${error}</p>` : null}
      <button type="submit" class="primary" disabled=${busy}>Sign in</button>
    </form>
  </main>`;
}

function ConnectionBadge({ live }) {
  const [state, setState] = useState(live ? live.state : "idle");
  useEffect(() => live && live.subscribe((m) => m.type === "@state" && setState(m.data.state)), [live]);
  const text = live
    ? { open: "Live", connecting: "Connecting…", reconnecting: "Reconnecting…", idle: "Offline" }[state]
    : "No live updates (needs TRADER or ADMIN)";
  return html`<span class="badge ${state}" role="status" aria-live="polite" data-testid="ws-state" data-state=${state}>${text}</span>`;
}

function App({ config }) {
  const [session, setSession] = useState(storedSession);
  const [notice, setNotice] = useState(null);
  const [view, setView] = useState(currentView);
  useEffect(() => {
    const onHash = () => setView(currentView());
    window.addEventListener("hashchange", onHash);
    return () => window.removeEventListener("hashchange", onHash);
  }, []);
  useEffect(() => {
    completeCognitoSignIn(config)
      .then((s) => s && setSession(s))
      .catch((exc) => setNotice(exc.message));
  }, []);
  const api = useMemo(
    () =>
      createApi(config, () => session && session.token, () => {
        forgetSession();
        setNotice("Your session expired or was refused (401). Sign in again.");
        setSession(null);
      }),
    [session],
  );
  // The WebSocket API admits TRADER and ADMIN tokens (docs/websocket.md): an operator's gets
  // broker status and the routing status, never a trader's orders; others would be refused.
  const live = useMemo(
    () => (session && (session.groups.includes("TRADER") || session.groups.includes("ADMIN")) ? new LiveConnection(config.wsUrl, () => session.token) : null),
    [session],
  );
  useEffect(() => {
    if (!live) return undefined;
    live.start();
    return () => live.stop();
  }, [live]);
  if (!session) {
    return html`<${SignIn} config=${config} notice=${notice} onSession=${(s) => { setNotice(null); setSession(s); }} />`;
  }
  function signOut() {
    forgetSession();
    const url = signOutUrl(config);
    if (url) window.location.assign(url);
    else setSession(null);
  }
  const View = view.component;
  return html`<div class="shell">
    <a class="skip" href="#main">Skip to content</a>
    <header>
      <span class="brand">Order router</span>
      <nav aria-label="Views">
        <ul>
          ${VIEWS.map(
            (v) => html`<li><a href=${`#/${v.id}`} aria-current=${v.id === view.id ? "page" : undefined}>${v.title}</a></li>`,
          )}
        </ul>
      </nav>
      <div class="who">
        <${ConnectionBadge} live=${live} />
        <span data-testid="who">${session.user} (${session.groups.join(", ") || "no group"})</span>
        <button type="button" onClick=${signOut}>Sign out</button>
      </div>
    </header>
    <main id="main" tabindex="-1">
      <h1>${view.title}</h1>
      <${View} api=${api} live=${live} session=${session} />
    </main>
  </div>`;
}

async function boot() {
  const root = document.getElementById("app");
  try {
    const response = await fetch("/config.json", { cache: "no-store" });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const config = await response.json();
    root.textContent = "";
    render(html`<${App} config=${config} />`, root);
  } catch (exc) {
    root.innerHTML = "";
    const p = document.createElement("p");
    p.setAttribute("role", "alert");
    p.textContent = `The dashboard could not load its configuration (/config.json): ${exc.message}`;
    root.append(p);
  }
}

boot();
