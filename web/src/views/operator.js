import { useEffect, useState } from "preact/hooks";
import { ADMIN } from "../api.js";
import { ErrorNotice, html, time, Unavailable } from "../ui.js";

const STATUSES = ["ACTIVE", "MAINTENANCE", "SUSPENDED"];
const ALARM_REFRESH_MS = 15000;
// Worst first: what needs the operator's attention leads the table.
const ALARM_ORDER = { ALARM: 0, INSUFFICIENT_DATA: 1, OK: 2 };
const ALARM_WORDS = { ALARM: "In alarm", INSUFFICIENT_DATA: "Insufficient data", OK: "OK" };
const SOURCE_WORDS = { cloudwatch: "CloudWatch", local: "local mode (the stack's alarm definitions evaluated on local metrics)" };

// BrokerAdminView nests the configuration: {broker: {brokerId, adapter, ...}, status, reason}.
const idOf = (b) => b.brokerId || b.broker_id || (b.broker && (b.broker.brokerId || b.broker.broker_id));
const adapterOf = (b) => b.adapter || (b.broker && b.broker.adapter) || "–";

function useResource(api, path, query) {
  const [state, setState] = useState({ data: null, error: null });
  const load = () =>
    api.get(path, query).then(
      (data) => setState({ data, error: null }),
      (error) => setState({ data: null, error }),
    );
  useEffect(() => { load(); }, [api]);
  return [state, load];
}

function Resource({ state, what, onRetry, children }) {
  if (state.error && state.error.status === 404) return html`<${Unavailable} what=${what} />`;
  if (state.error) return html`<${ErrorNotice} error=${state.error} onRetry=${onRetry} />`;
  if (!state.data) return html`<p class="muted">Loading…</p>`;
  return children(state.data);
}

// The brokers' routing status as the WebSocket tells it: ROUTING_STATUS (on every connect) then
// each BROKER_STATUS; null until the first arrives, {available: false} if the server lacks it.
function useLiveStatus(live) {
  const [status, setStatus] = useState(null);
  useEffect(() => {
    if (!live) return undefined;
    // live.js asks again until a ROUTING_STATUS arrives (a reply can be lost).
    const off = live.subscribe((m) => {
      if (m.type === "ROUTING_STATUS") {
        setStatus({ available: true, brokers: Object.fromEntries((m.data.brokers || []).map((b) => [b.brokerId || b.broker_id, b])) });
      } else if (m.type === "BROKER_STATUS") {
        setStatus((s) => ({ available: true, brokers: { ...(s && s.brokers), [m.data.brokerId || m.data.broker_id]: m.data } }));
      } else if (m.type === "ERROR" && m.data && m.data.code === "UNKNOWN_ACTION") {
        setStatus({ available: false, brokers: {} });
      }
    });
    live.send({ action: "status" });
    return off;
  }, [live]);
  return status;
}

function AlarmSummary({ api }) {
  const [alarms, reload] = useResource(api, `${ADMIN}/alarms`);
  useEffect(() => {
    const timer = setInterval(reload, ALARM_REFRESH_MS);
    return () => clearInterval(timer);
  }, [api]);
  return html`<${Resource} state=${alarms} what="the alarm API (GET /admin/alarms)" onRetry=${reload}>${(data) => {
    const rows = [...(data.alarms || [])].sort((a, b) => ALARM_ORDER[a.state] - ALARM_ORDER[b.state]);
    const firing = rows.filter((a) => a.state === "ALARM").length;
    return html`<p data-testid="alarm-count" role="status" aria-live="polite"><strong class=${firing ? "bad" : "ok"}>${firing ? `${firing} in alarm` : "No alarm firing"}</strong>
        <span class="muted"> · ${rows.length} alarms from ${SOURCE_WORDS[data.source] || data.source}, read ${time(data.evaluatedAt)}</span>
        <button type="button" onClick=${reload}>Refresh</button></p>
      <div class="scroll"><table class="alarms" data-testid="alarms"><caption class="sr-only">Alarms, those in alarm first</caption>
        <thead><tr><th scope="col">Alarm</th><th scope="col">State</th><th scope="col">Guards</th><th scope="col">Reason</th><th scope="col">Since</th></tr></thead>
        <tbody>${rows.map((a) => html`<tr data-alarm=${a.name} data-state=${a.state}>
          <th scope="row" title=${a.description}>${a.name}</th>
          <td><span class="state ${a.state.toLowerCase()}" data-testid="alarm-state">${ALARM_WORDS[a.state] || a.state}</span></td>
          <td>${a.guards}<div class="muted small">${a.metric} ${a.statistic} ${a.comparison === "GreaterThanThreshold" ? ">" : a.comparison} ${a.threshold} per ${a.periodS} s</div></td>
          <td class="reason">${a.reason}</td><td>${time(a.updatedAt)}</td></tr>`)}</tbody>
      </table></div>`;
  }}<//>`;
}

function StatusControl({ api, broker, onDone }) {
  const [status, setStatus] = useState(broker.status);
  const [reason, setReason] = useState("");
  const [error, setError] = useState(null);
  const id = `s-${idOf(broker)}`;
  async function apply(event) {
    event.preventDefault();
    try {
      await api.put(`${ADMIN}/brokers/${encodeURIComponent(idOf(broker))}/status`, { status, reason });
      setError(null);
      onDone();
    } catch (exc) {
      setError(exc);
    }
  }
  return html`<form class="inline-form" onSubmit=${apply} aria-label=${`Status of ${idOf(broker)}`}>
    <label for=${id} class="sr-only">Status</label>
    <select id=${id} value=${status} onChange=${(e) => setStatus(e.currentTarget.value)}>${STATUSES.map((s) => html`<option value=${s}>${s}</option>`)}</select>
    <label for=${`${id}-reason`} class="sr-only">Reason</label>
    <input id=${`${id}-reason`} placeholder="reason" value=${reason} required onInput=${(e) => setReason(e.currentTarget.value)} />
    <button type="submit">Apply</button>
    <${ErrorNotice} error=${error} />
  </form>`;
}

export function OperatorView({ api, live, session }) {
  // Without ADMIN the admin routes would only refuse: do not call them at all.
  if (!session.groups.includes("ADMIN")) {
    return html`<div class="notice error" role="alert" data-testid="needs-admin">The operator view needs the ADMIN group; you are signed in as ${session.user} (${session.groups.join(", ") || "no group"}).</div>`;
  }
  return html`<${AdminPanels} api=${api} live=${live} />`;
}

function liveCell(status, brokerId) {
  const b = status && status.brokers[brokerId];
  if (!b) return "–";
  return `${b.status}${b.reason ? ` (${b.reason})` : ""}`;
}

function AdminPanels({ api, live }) {
  const [brokers, reloadBrokers] = useResource(api, `${ADMIN}/brokers`);
  const [quarantine, reloadQuarantine] = useResource(api, `${ADMIN}/quarantine`, { limit: 50 });
  const [audit, reloadAudit] = useResource(api, `${ADMIN}/audit`, { limit: 20 });
  const [health, setHealth] = useState(null);
  const liveStatus = useLiveStatus(live);
  useEffect(() => {
    api.get("/health").then(
      (body) => setHealth({ status: 200, body }),
      (exc) => setHealth({ status: exc.status, body: null }),
    );
  }, [api]);
  useEffect(() => {
    if (!live) return undefined;
    return live.subscribe((m) => {
      if (m.type === "BROKER_STATUS") { reloadBrokers(); reloadAudit(); }
    });
  }, [live, api]);
  const dependencies = health && health.body && (health.body.dependencies || health.body.checks);
  return html`<div class="operator">
    <section class="card wide" aria-labelledby="op-alarms"><h2 id="op-alarms">Alarm summary</h2>
      ${health === null
        ? html`<p class="muted">Loading…</p>`
        : html`<p data-testid="health">Service health: <strong class=${health.status === 200 ? "ok" : "bad"}>${health.status === 200 ? "healthy" : `unhealthy (HTTP ${health.status})`}</strong>
          ${dependencies ? html` <span class="muted">(${Object.entries(dependencies).map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : String(v)}`).join(", ")})</span>` : null}</p>`}
      <${AlarmSummary} api=${api} />
    </section>
    <section class="card" aria-labelledby="op-brokers"><h2 id="op-brokers">Broker status</h2>
      <p class="muted small" data-testid="live-status-note">${!live ? "No WebSocket: the Live column is empty." : liveStatus === null ? "Waiting for the routing status on the WebSocket…" : liveStatus.available ? "Live: routing status from the WebSocket (ROUTING_STATUS, then each BROKER_STATUS)." : "The WebSocket does not serve the routing status here."}</p>
      <${Resource} state=${brokers} what="the admin broker API (GET /admin/brokers)" onRetry=${reloadBrokers}>${(data) => html`<div class="scroll"><table data-testid="admin-brokers">
        <caption class="sr-only">Registered brokers and their status</caption>
        <thead><tr><th scope="col">Broker</th><th scope="col">Adapter</th><th scope="col">Status (live)</th><th scope="col">Change</th></tr></thead>
        <tbody>${(data.brokers || []).map((b) => html`<tr data-broker=${idOf(b)}><th scope="row">${idOf(b)}</th><td>${adapterOf(b)}</td><td><span data-testid="broker-status">${b.status}${b.reason ? ` (${b.reason})` : ""}</span>
          <div class="small muted">live: <span data-testid="broker-live">${liveCell(liveStatus, idOf(b))}</span></div></td>
          <td><${StatusControl} api=${api} broker=${b} onDone=${() => { reloadBrokers(); reloadAudit(); }} /></td></tr>`)}</tbody>
      </table></div>`}<//>
    </section>
    <section class="card" aria-labelledby="op-quarantine"><h2 id="op-quarantine">Quarantined reports</h2>
      <${Resource} state=${quarantine} what="the quarantine API (GET /admin/quarantine)" onRetry=${reloadQuarantine}>${(data) => {
        const rows = data.reports || data.quarantine || data.items || [];
        return rows.length
          ? html`<div class="scroll"><table data-testid="quarantine"><caption class="sr-only">Quarantined execution reports</caption>
              <thead><tr><th scope="col">When</th><th scope="col">Broker</th><th scope="col">Reason</th><th scope="col">Message</th></tr></thead>
              <tbody>${rows.map((q) => html`<tr><td>${time(q.quarantinedAt || q.receivedAt || q.createdAt)}</td><td>${q.brokerId || q.broker_id || "–"}</td><td>${q.reason}</td><td>${q.message || q.detail || ""}</td></tr>`)}</tbody></table></div>`
          : html`<p class="muted">Nothing quarantined.</p>`;
      }}<//>
    </section>
    <section class="card" aria-labelledby="op-audit"><h2 id="op-audit">Audit trail</h2>
      <${Resource} state=${audit} what="the audit API (GET /admin/audit)" onRetry=${reloadAudit}>${(data) => {
        const rows = data.entries || data.audit || data.items || [];
        return rows.length
          ? html`<ul>${rows.map((a) => html`<li>${time(a.changedAt || a.changed_at || a.at)} ${a.actor || a.changedBy || a.changed_by}: ${a.action} ${a.brokerId || a.broker_id || ""}${a.newStatus ? ` → ${a.newStatus}` : ""} ${a.reason ? `(${a.reason})` : ""}</li>`)}</ul>`
          : html`<p class="muted">No audit entries.</p>`;
      }}<//>
    </section>
  </div>`;
}
