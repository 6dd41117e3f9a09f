import { useEffect, useRef, useState } from "preact/hooks";
import { TRADING } from "../api.js";
import { ChartView, dataset, ErrorNotice, html, num, pct, time } from "../ui.js";

const SYMBOLS = ["RELIANCE", "TCS", "HDFCBANK", "INFY", "ICICIBANK", "SBIN", "ITC", "LT", "WIPRO", "TATASTEEL"];
const POLL_MS = 10000;
const HISTORY = 60;

// 95 % interval half-width, in percentage points, of a rate learned from n samples (normal
// approximation; n = 0 means nothing learned yet).
export function rateUncertainty(percentage, n) {
  if (!n) return null;
  const p = Math.min(Math.max(Number(percentage) / 100, 0), 1);
  return 196 * Math.sqrt((p * (1 - p) + 1 / n) / n);
}

export function BrokersView({ api, live }) {
  const [symbol, setSymbol] = useState("RELIANCE");
  const [profiles, setProfiles] = useState(null);
  const [history, setHistory] = useState([]);
  const [flow, setFlow] = useState({});
  const [status, setStatus] = useState(null);
  const [error, setError] = useState(null);
  const symbolRef = useRef(symbol);
  symbolRef.current = symbol;

  const load = async () => {
    try {
      const list = await api.get(`${TRADING}/brokers/profiles`, { symbol });
      if (symbolRef.current !== symbol) return;
      setProfiles(list);
      setHistory((h) => [...h, { at: new Date().toISOString(), list }].slice(-HISTORY));
      setError(null);
    } catch (exc) {
      setError(exc);
    }
  };
  useEffect(() => {
    setHistory([]);
    setProfiles(null);
    load();
    const timer = setInterval(load, POLL_MS);
    return () => clearInterval(timer);
  }, [api, symbol]);
  useEffect(() => {
    api.get(`${TRADING}/analytics/execution`, { days: 30 }).then(
      (body) => {
        const rows = body.byBroker || [];
        const total = rows.reduce((sum, r) => sum + (r.orderedQuantity || 0), 0);
        setFlow(Object.fromEntries(rows.map((r) => [r.brokerId, total ? (100 * (r.orderedQuantity || 0)) / total : 0])));
      },
      () => setFlow({}),
    );
  }, [api]);
  useEffect(() => {
    if (!live) return undefined;
    live.send({ action: "status" });
    return live.subscribe((m) => {
      if (m.type === "ROUTING_STATUS") setStatus({ available: true, brokers: Object.fromEntries((m.data.brokers || []).map((b) => [b.broker_id || b.brokerId, b])) });
      else if (m.type === "BROKER_STATUS") setStatus((s) => ({ available: true, brokers: { ...(s ? s.brokers : {}), [m.data.broker_id || m.data.brokerId]: m.data } }));
      else if (m.type === "ERROR" && m.data && m.data.code === "UNKNOWN_ACTION") setStatus((s) => s || { available: false, brokers: {} });
    });
  }, [live]);

  const list = profiles || [];
  const brokers = list.map((p) => p.brokerId);
  const latencyOverTime = {
    labels: history.map((h) => time(h.at)),
    datasets: brokers.map((b, i) => ({ ...dataset(b, history.map((h) => (h.list.find((p) => p.brokerId === b) || {}).avgExecutionTimeMs ?? null), i), fill: false })),
  };
  const rates = {
    labels: brokers,
    datasets: [
      dataset("fill rate %", list.map((p) => p.fillRatePercentage), 2),
      dataset("error rate %", list.map((p) => p.errorRatePercentage), 1),
    ],
  };
  return html`<section class="card">
    <div class="field inline-field">
      <label for="p-symbol">Symbol</label>
      <select id="p-symbol" value=${symbol} onChange=${(e) => setSymbol(e.currentTarget.value)}>
        ${SYMBOLS.map((s) => html`<option value=${s}>${s}</option>`)}
      </select>
    </div>
    <${ErrorNotice} error=${error} onRetry=${load} />
    ${status && !status.available
      ? html`<div class="notice unavailable" role="status" data-testid="unavailable"><strong>Not available:</strong> live broker status (ROUTING_STATUS) is not served yet; the status column shows each profile's.</div>`
      : null}
    ${profiles === null
      ? html`<p class="muted">Loading…</p>`
      : html`<div class="scroll"><table data-testid="profiles">
          <caption>Learned profiles for ${symbol} (± is a 95 % interval from the sample count)</caption>
          <thead><tr><th scope="col">Broker</th><th scope="col">Status</th><th scope="col">Samples</th><th scope="col">Avg execution (ms)</th>
            <th scope="col">Response (ms)</th><th scope="col">Slippage (bps)</th><th scope="col">Fill rate</th><th scope="col">Error rate</th>
            <th scope="col">Share of flow (30 d)</th><th scope="col">Updated</th></tr></thead>
          <tbody>${list.map((p) => {
            const live = status && status.brokers[p.brokerId];
            const fillPm = rateUncertainty(p.fillRatePercentage, p.sampleCount);
            const errorPm = rateUncertainty(p.errorRatePercentage, p.sampleCount);
            return html`<tr><th scope="row">${p.brokerId}</th>
              <td>${live ? `${live.status}${live.reason ? ` (${live.reason})` : ""}` : p.status || "–"}</td>
              <td>${p.sampleCount ?? 0}</td><td>${num(p.avgExecutionTimeMs, 0)}</td><td>${num(p.responseTimeMs, 0)}</td>
              <td>${num(p.slippageBps, 2)}</td>
              <td>${pct(p.fillRatePercentage)}${fillPm === null ? "" : ` ± ${num(fillPm, 1)}`}</td>
              <td>${pct(p.errorRatePercentage)}${errorPm === null ? "" : ` ± ${num(errorPm, 1)}`}</td>
              <td>${flow[p.brokerId] === undefined ? "–" : pct(flow[p.brokerId])}</td><td>${time(p.lastUpdated)}</td></tr>`;
          })}</tbody>
        </table></div>
        <div class="charts">
          <${ChartView} type="line" testid="chart-profile-latency" label=${`Average execution time over time, ${symbol} (ms; sampled every ${POLL_MS / 1000} s while open)`} data=${latencyOverTime} />
          <${ChartView} type="bar" testid="chart-profile-rates" label=${`Fill and error rates, ${symbol} (%)`} data=${rates} />
        </div>`}
  </section>`;
}
