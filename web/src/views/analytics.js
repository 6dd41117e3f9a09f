import { useEffect, useState } from "preact/hooks";
import { TRADING } from "../api.js";
import { ChartView, dataset, ErrorNotice, html, inr, num, pct } from "../ui.js";

const DAYS = [1, 7, 30, 90, 365];
const COLUMNS = [
  ["orders", "Orders", (v) => v ?? 0],
  ["childExecutions", "Executions", (v) => v ?? 0],
  ["p50LatencyMs", "p50 latency (ms)", (v) => num(v, 0)],
  ["p95LatencyMs", "p95 latency (ms)", (v) => num(v, 0)],
  ["avgSlippageBps", "Slippage (bps)", (v) => num(v, 2)],
  ["avgPriceImprovementBps", "Price improvement (bps)", (v) => num(v, 2)],
  ["fillRatePercentage", "Fill rate", (v) => pct(v)],
  ["totalChargesInr", "Charges", (v) => inr(v)],
];

function Breakdown({ rows, keyName, title, testid }) {
  if (!rows || rows.length === 0) return html`<p class="muted">No ${title.toLowerCase()} in this window.</p>`;
  return html`<div class="scroll"><table data-testid=${testid}>
    <caption>${title}</caption>
    <thead><tr><th scope="col">${keyName === "brokerId" ? "Broker" : "Strategy"}</th>${COLUMNS.map(([, l]) => html`<th scope="col">${l}</th>`)}</tr></thead>
    <tbody>${rows.map((r) => html`<tr><th scope="row">${r[keyName]}</th>${COLUMNS.map(([k, , f]) => html`<td>${f(r[k])}</td>`)}</tr>`)}</tbody>
  </table></div>`;
}

export function AnalyticsView({ api, live }) {
  const [days, setDays] = useState(30);
  const [body, setBody] = useState(null);
  const [error, setError] = useState(null);
  const load = () =>
    api.get(`${TRADING}/analytics/execution`, { days }).then(
      (b) => { setBody(b); setError(null); },
      (exc) => setError(exc),
    );
  useEffect(() => { load(); }, [api, days]);
  useEffect(() => {
    if (!live) return undefined;
    let timer = null;
    const off = live.subscribe((m) => {
      if (m.type !== "EXECUTION_UPDATE") return;
      clearTimeout(timer);
      timer = setTimeout(load, 1000);
    });
    return () => { clearTimeout(timer); off(); };
  }, [live, api, days]);
  const brokers = (body && body.byBroker) || [];
  const strategies = (body && body.byStrategy) || [];
  const s = body && body.summary;
  return html`<section class="card">
    <div class="field inline-field">
      <label for="a-days">Window</label>
      <select id="a-days" value=${days} onChange=${(e) => setDays(Number(e.currentTarget.value))}>
        ${DAYS.map((d) => html`<option value=${d}>${d === 1 ? "last day" : `last ${d} days`}</option>`)}
      </select>
    </div>
    <${ErrorNotice} error=${error} onRetry=${load} />
    ${s
      ? html`<dl class="facts" data-testid="summary">
          <div><dt>Orders</dt><dd>${s.orders ?? 0}</dd></div>
          <div><dt>Fill rate</dt><dd>${pct(s.fillRatePercentage)}</dd></div>
          <div><dt>p50 / p95 latency</dt><dd>${num(s.p50LatencyMs, 0)} / ${num(s.p95LatencyMs, 0)} ms</dd></div>
          <div><dt>Slippage</dt><dd>${num(s.avgSlippageBps, 2)} bps</dd></div>
          <div><dt>Price improvement</dt><dd>${num(s.avgPriceImprovementBps, 2)} bps</dd></div>
          <div><dt>Charges</dt><dd>${inr(s.totalChargesInr)}</dd></div>
        </dl>`
      : null}
    ${brokers.length
      ? html`<div class="charts">
          <${ChartView} type="bar" testid="chart-latency" label="Latency per broker, p50 and p95 (ms)"
            data=${{ labels: brokers.map((b) => b.brokerId), datasets: [dataset("p50 ms", brokers.map((b) => b.p50LatencyMs), 0), dataset("p95 ms", brokers.map((b) => b.p95LatencyMs), 1)] }} />
          <${ChartView} type="bar" testid="chart-quality" label="Slippage and price improvement per broker (bps)"
            data=${{ labels: brokers.map((b) => b.brokerId), datasets: [dataset("slippage bps", brokers.map((b) => b.avgSlippageBps), 1), dataset("price improvement bps", brokers.map((b) => b.avgPriceImprovementBps), 2)] }} />
          <${ChartView} type="bar" testid="chart-fill" label="Fill rate per strategy (%)"
            data=${{ labels: strategies.map((b) => b.strategy), datasets: [dataset("fill rate %", strategies.map((b) => b.fillRatePercentage), 0)] }}
            options=${{ scales: { y: { min: 0, max: 100 } } }} />
        </div>`
      : null}
    ${body ? html`<${Breakdown} rows=${brokers} keyName="brokerId" title="Per broker" testid="by-broker" />
      <${Breakdown} rows=${strategies} keyName="strategy" title="Per strategy" testid="by-strategy" />` : null}
  </section>`;
}
