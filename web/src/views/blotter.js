import { useEffect, useState } from "preact/hooks";
import { TRADING } from "../api.js";
import { fills, knownOrders } from "../orders.js";
import { ErrorNotice, html, inr, num, time } from "../ui.js";

// GET /orders (the order history) when the server has it; otherwise the orders this browser
// submitted, each read with GET /orders/{id}, and a notice saying so.
async function loadOrders(api, user, filters) {
  try {
    const page = await api.get(`${TRADING}/orders`, { limit: 50, status: filters.status, symbol: filters.symbol });
    return { orders: page.orders, source: "history" };
  } catch (exc) {
    if (exc.status !== 404) throw exc;
  }
  const views = await Promise.all(
    knownOrders(user).map((id) => api.get(`${TRADING}/orders/${encodeURIComponent(id)}`).catch(() => null)),
  );
  const orders = views
    .filter(Boolean)
    .filter((v) => (!filters.status || v.order.status === filters.status) && (!filters.symbol || v.order.symbol === filters.symbol));
  return { orders, source: "session" };
}

export function BlotterView({ api, live, session }) {
  const [state, setState] = useState({ orders: null, source: null });
  const [error, setError] = useState(null);
  const [filters, setFilters] = useState({ status: "", symbol: "" });
  const load = () =>
    loadOrders(api, session.user, filters).then(
      (s) => { setState(s); setError(null); },
      (exc) => setError(exc),
    );
  useEffect(() => { load(); }, [api, filters.status, filters.symbol]);
  useEffect(() => {
    if (!live) return undefined;
    let timer = null;
    const unsubscribe = live.subscribe((m) => {
      if (!["ROUTING_UPDATE", "EXECUTION_UPDATE", "ORDER_UPDATE"].includes(m.type)) return;
      clearTimeout(timer);
      timer = setTimeout(load, 250);
    });
    return () => { clearTimeout(timer); unsubscribe(); };
  }, [live, api, filters.status, filters.symbol]);
  const orders = state.orders;
  return html`<section class="card">
    <form class="filters" aria-label="Filter orders" onSubmit=${(e) => e.preventDefault()}>
      <div class="field"><label for="b-symbol">Symbol</label>
        <input id="b-symbol" value=${filters.symbol} onChange=${(e) => setFilters({ ...filters, symbol: e.currentTarget.value.trim().toUpperCase() })} /></div>
      <div class="field"><label for="b-status">Status</label>
        <select id="b-status" value=${filters.status} onChange=${(e) => setFilters({ ...filters, status: e.currentTarget.value })}>
          <option value="">any</option>
          ${["ROUTED", "PARTIALLY_FILLED", "FILLED", "REJECTED", "CANCELLED"].map((s) => html`<option value=${s}>${s}</option>`)}
        </select></div>
      <button type="button" onClick=${load}>Refresh</button>
    </form>
    <${ErrorNotice} error=${error} onRetry=${load} />
    ${state.source === "session"
      ? html`<div class="notice unavailable" role="status" data-testid="unavailable">
          <strong>Not available:</strong> the order history (GET /orders) is not served yet (404); showing the orders submitted from this browser.
        </div>`
      : null}
    ${orders === null
      ? html`<p class="muted">Loading…</p>`
      : orders.length === 0
        ? html`<p class="muted" data-testid="blotter-empty">No orders yet.</p>`
        : html`<div class="scroll"><table data-testid="blotter">
            <caption class="sr-only">Your orders, newest first</caption>
            <thead><tr>
              <th scope="col">Time</th><th scope="col">Order</th><th scope="col">Symbol</th><th scope="col">Side</th>
              <th scope="col">Qty</th><th scope="col">Filled</th><th scope="col">Status</th><th scope="col">Avg price</th>
              <th scope="col">Arrival</th><th scope="col">vs arrival</th><th scope="col">Charges</th><th scope="col">All-in</th>
            </tr></thead>
            <tbody>${orders.map((v) => {
              const f = fills(v);
              const o = v.order;
              return html`<tr data-order=${o.orderId}>
                <td>${time(o.createdAt)}</td><th scope="row">${o.orderId}</th><td>${o.symbol}</td><td>${o.side}</td>
                <td>${o.quantity}</td><td data-testid="filled">${f.filled}</td><td>${o.status}</td><td>${inr(f.average)}</td>
                <td>${inr(f.arrival)}</td><td class=${f.slippageBps > 0 ? "bad" : "good"}>${f.slippageBps === null ? "–" : `${num(f.slippageBps, 1)} bps`}</td>
                <td>${inr(f.chargesInr)}${f.chargesEstimated && f.chargesInr !== null ? " (est.)" : ""}</td><td>${inr(f.allInInr)}</td>
              </tr>`;
            })}</tbody>
          </table></div>`}
  </section>`;
}
