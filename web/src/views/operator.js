import { useEffect, useState } from "preact/hooks";
import { ADMIN } from "../api.js";
import { ErrorNotice, html, time, Unavailable } from "../ui.js";

const STATUSES = ["ACTIVE", "MAINTENANCE", "SUSPENDED"];

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

function AdminPanels({ api, live }) {
  const [brokers, reloadBrokers] = useResource(api, `${ADMIN}/brokers`);
  const [quarantine, reloadQuarantine] = useResource(api, `${ADMIN}/quarantine`, { limit: 50 });
  const [audit, reloadAudit] = useResource(api, `${ADMIN}/audit`, { limit: 20 });
  const [health, setHealth] = useState(null);
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
    <section class="card" aria-labelledby="op-alarms"><h2 id="op-alarms">Alarm summary</h2>
      ${health === null
        ? html`<p class="muted">Loading…</p>`
        : html`<p data-testid="health">Service health: <strong class=${health.status === 200 ? "ok" : "bad"}>${health.status === 200 ? "healthy" : `unhealthy (HTTP ${health.status})`}</strong></p>
          ${dependencies ? html`<ul>${Object.entries(dependencies).map(([k, v]) => html`<li>${k}: ${typeof v === "object" ? JSON.stringify(v) : String(v)}</li>`)}</ul>` : null}
          <p class="muted">CloudWatch alarms (latency, errors, dead letters) are on the stack's CloudWatch dashboard.</p>`}
    </section>
    <section class="card" aria-labelledby="op-brokers"><h2 id="op-brokers">Broker status</h2>
      <${Resource} state=${brokers} what="the admin broker API (GET /admin/brokers)" onRetry=${reloadBrokers}>${(data) => html`<div class="scroll"><table data-testid="admin-brokers">
        <caption class="sr-only">Registered brokers and their status</caption>
        <thead><tr><th scope="col">Broker</th><th scope="col">Adapter</th><th scope="col">Status</th><th scope="col">Change</th></tr></thead>
        <tbody>${(data.brokers || []).map((b) => html`<tr data-broker=${idOf(b)}><th scope="row">${idOf(b)}</th><td>${adapterOf(b)}</td><td data-testid="broker-status">${b.status}${b.reason ? ` (${b.reason})` : ""}</td>
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
