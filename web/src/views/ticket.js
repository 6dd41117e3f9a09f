import { useEffect, useRef, useState } from "preact/hooks";
import { TRADING } from "../api.js";
import { rememberOrder, TERMINAL_CHILD } from "../orders.js";
import { ChartView, dataset, ErrorNotice, html, inr, num, pct, time } from "../ui.js";

const ORDER_TYPES = ["MARKET", "LIMIT", "STOP_LOSS", "STOP_LOSS_MARKET"];
const OBJECTIVES = ["SMART_BALANCE", "BEST_PRICE", "FASTEST_EXECUTION", "LOWEST_COST"];
const FACTORS = [
  ["executionSpeedScore", "Speed"],
  ["priceQualityScore", "Price"],
  ["reliabilityScore", "Reliability"],
  ["liquidityScore", "Liquidity"],
  ["costScore", "Cost"],
];
const SYMBOLS = ["RELIANCE", "TCS", "HDFCBANK", "INFY", "ICICIBANK", "SBIN", "BHARTIARTL", "ITC", "LT", "WIPRO", "TATASTEEL"];
const DEBOUNCE_MS = 300;

function requestBody(form) {
  const body = {
    symbol: form.symbol.trim().toUpperCase(),
    exchange: form.exchange,
    side: form.side,
    quantity: Number(form.quantity),
    orderType: form.orderType,
    product: form.product,
    routingObjective: form.routingObjective,
  };
  if (form.orderType === "LIMIT" || form.orderType === "STOP_LOSS") body.limitPrice = form.limitPrice;
  if (form.orderType.startsWith("STOP_LOSS")) body.triggerPrice = form.triggerPrice;
  if (form.maxBrokers) body.maxBrokers = Number(form.maxBrokers);
  return body;
}

function localProblem(form) {
  if (!form.symbol.trim()) return "Enter a symbol.";
  if (!/^[1-9]\d*$/.test(String(form.quantity))) return "Quantity must be a whole number above 0.";
  if ((form.orderType === "LIMIT" || form.orderType === "STOP_LOSS") && !(Number(form.limitPrice) > 0)) return "Enter a limit price.";
  if (form.orderType.startsWith("STOP_LOSS") && !(Number(form.triggerPrice) > 0)) return "Enter a trigger price.";
  return null;
}

function Field({ id, label, children }) {
  return html`<div class="field"><label for=${id}>${label}</label>${children}</div>`;
}

function OrderForm({ form, set, onSubmit, busy }) {
  const input = (name) => (e) => set({ ...form, [name]: e.currentTarget.value });
  const needsLimit = form.orderType === "LIMIT" || form.orderType === "STOP_LOSS";
  const needsTrigger = form.orderType.startsWith("STOP_LOSS");
  return html`<form class="ticket" aria-label="Order ticket" onSubmit=${onSubmit}>
    <${Field} id="t-symbol" label="Symbol">
      <input id="t-symbol" name="symbol" list="t-symbols" value=${form.symbol} required autocomplete="off"
        onInput=${input("symbol")} />
      <datalist id="t-symbols">${SYMBOLS.map((s) => html`<option value=${s} />`)}</datalist>
    <//>
    <fieldset class="field">
      <legend>Side</legend>
      ${["BUY", "SELL"].map(
        (s) => html`<label class="inline"><input type="radio" name="side" value=${s} checked=${form.side === s} onChange=${input("side")} /> ${s}</label>`,
      )}
    </fieldset>
    <${Field} id="t-quantity" label="Quantity">
      <input id="t-quantity" name="quantity" type="number" min="1" step="1" inputmode="numeric" value=${form.quantity}
        required onInput=${input("quantity")} />
    <//>
    <${Field} id="t-type" label="Order type">
      <select id="t-type" name="orderType" value=${form.orderType} onChange=${input("orderType")}>
        ${ORDER_TYPES.map((t) => html`<option value=${t}>${t}</option>`)}
      </select>
    <//>
    ${needsLimit
      ? html`<${Field} id="t-limit" label="Limit price (₹)">
          <input id="t-limit" name="limitPrice" type="number" min="0.05" step="0.05" value=${form.limitPrice} onInput=${input("limitPrice")} />
        <//>`
      : null}
    ${needsTrigger
      ? html`<${Field} id="t-trigger" label="Trigger price (₹)">
          <input id="t-trigger" name="triggerPrice" type="number" min="0.05" step="0.05" value=${form.triggerPrice} onInput=${input("triggerPrice")} />
        <//>`
      : null}
    <${Field} id="t-objective" label="Routing objective">
      <select id="t-objective" name="routingObjective" value=${form.routingObjective} onChange=${input("routingObjective")}>
        ${OBJECTIVES.map((t) => html`<option value=${t}>${t}</option>`)}
      </select>
    <//>
    <${Field} id="t-exchange" label="Exchange">
      <select id="t-exchange" name="exchange" value=${form.exchange} onChange=${input("exchange")}>
        <option value="NSE">NSE</option><option value="BSE">BSE</option>
      </select>
    <//>
    <${Field} id="t-product" label="Product">
      <select id="t-product" name="product" value=${form.product} onChange=${input("product")}>
        <option value="CNC">CNC (delivery)</option><option value="MIS">MIS (intraday)</option>
      </select>
    <//>
    <${Field} id="t-max" label="Max brokers (optional)">
      <input id="t-max" name="maxBrokers" type="number" min="1" max="5" step="1" value=${form.maxBrokers} onInput=${input("maxBrokers")} />
    <//>
    <button type="submit" class="primary" disabled=${busy}>${busy ? "Submitting…" : `Submit ${form.side}`}</button>
  </form>`;
}

function Preview({ preview, loading }) {
  if (!preview) return html`<p class="muted">${loading ? "Analysing…" : "The preview appears as you type."}</p>`;
  const expected = preview.expectedExecution;
  const charges = expected.charges || {};
  const included = preview.brokerScores.filter((s) => !s.exclusionReason);
  const excluded = preview.brokerScores.filter((s) => s.exclusionReason);
  const scoreData = {
    labels: included.map((s) => s.brokerId),
    datasets: FACTORS.map(([key, label], i) => dataset(label, included.map((s) => s[key]), i)),
  };
  return html`<div class="preview" data-testid="preview" aria-busy=${loading}>
    <dl class="facts">
      <div><dt>Strategy</dt><dd>${preview.strategy}</dd></div>
      <div><dt>Confidence</dt><dd data-testid="confidence">${pct(preview.confidenceScore * 100, 0)}</dd></div>
      <div><dt>Expected price</dt><dd data-testid="expected-price">${inr(expected.price)}</dd></div>
      <div><dt>Expected slippage</dt><dd>${num(expected.slippageBps, 2)} bps</dd></div>
      <div><dt>Expected time</dt><dd>${num(expected.timeMs, 0)} ms</dd></div>
      <div><dt>Fill probability</dt><dd>${pct(expected.fillProbability * 100)}</dd></div>
      <div><dt>Total cost</dt><dd>${inr(expected.totalCostInr)}</dd></div>
    </dl>
    <h3>Split</h3>
    <div class="scroll"><table data-testid="split">
      <caption class="sr-only">Allocation of the order over brokers</caption>
      <thead><tr><th scope="col">Broker</th><th scope="col">Quantity</th><th scope="col">Share</th><th scope="col">Expected price</th><th scope="col">Priority</th></tr></thead>
      <tbody>${preview.allocations.map(
        (a) => html`<tr><th scope="row">${a.brokerId}</th><td>${a.quantity}</td><td>${a.allocationPercentage}%</td><td>${inr(a.expectedExecutionPrice)}</td><td>${a.priority}</td></tr>`,
      )}</tbody>
    </table></div>
    ${preview.fallbackBrokerIds.length ? html`<p class="muted">Fallback: ${preview.fallbackBrokerIds.join(", ")}</p>` : null}
    <h3>Charges</h3>
    <table class="charges" data-testid="charges">
      <caption class="sr-only">Itemised charges</caption>
      <tbody>
        ${[["brokerage", "Brokerage"], ["stt", "STT"], ["exchangeTxn", "Exchange transaction"], ["sebi", "SEBI fee"], ["stampDuty", "Stamp duty"], ["gst", "GST"], ["dp", "DP charge"]].map(
          ([k, label]) => html`<tr><th scope="row">${label}</th><td>${inr(charges[k])}</td></tr>`,
        )}
        <tr class="total"><th scope="row">Total</th><td>${inr(expected.totalCostInr)}</td></tr>
      </tbody>
    </table>
    <h3>Broker scores</h3>
    <div class="scroll"><table data-testid="scores">
      <caption class="sr-only">Each broker's total score and its five factors (0 to 1)</caption>
      <thead><tr><th scope="col">Broker</th>${FACTORS.map(([, l]) => html`<th scope="col">${l}</th>`)}<th scope="col">Total</th></tr></thead>
      <tbody>${included.map(
        (s) => html`<tr><th scope="row">${s.brokerId}</th>${FACTORS.map(([k]) => html`<td>${num(s[k], 3)}</td>`)}<td><strong>${num(s.totalScore, 3)}</strong></td></tr>`,
      )}</tbody>
    </table></div>
    ${included.length ? html`<${ChartView} type="bar" data=${scoreData} testid="chart-scores"
        label="Factor scores per broker (0 to 1)" options=${{ scales: { y: { min: 0, max: 1 } } }} />` : null}
    <h3>Excluded brokers</h3>
    ${excluded.length
      ? html`<ul data-testid="excluded">${excluded.map((s) => html`<li><strong>${s.brokerId}</strong>: ${s.exclusionReason}</li>`)}</ul>`
      : html`<p class="muted" data-testid="excluded">None excluded.</p>`}
  </div>`;
}

function describe(message) {
  const d = message.data || {};
  switch (message.type) {
    case "ROUTING_UPDATE":
      return `Routed (${d.strategy}): ${(d.allocations || []).map((a) => `${a.brokerId} ${a.quantity}`).join(", ")}`;
    case "EXECUTION_UPDATE":
      return `${d.brokerId} ${d.childOrderId}: ${d.status} ${d.filledQuantity ?? 0}/${d.quantity ?? "?"}${d.averagePrice ? ` @ ₹${d.averagePrice}` : ""}`;
    case "ORDER_UPDATE":
      return `Order ${d.status || "updated"}${d.reason ? `: ${d.reason}` : ""}${d.fromBrokerId ? ` (cascade ${d.fromBrokerId} → ${d.toBrokerId || "none"})` : ""}`;
    default:
      return message.type;
  }
}

function Followed({ followed }) {
  if (!followed) return null;
  const view = followed.view;
  const children = view ? view.childOrders : [];
  const complete = children.length > 0 && children.every((c) => TERMINAL_CHILD.has(c.status));
  const cascades = followed.result.cascades || [];
  return html`<section class="card followed" aria-labelledby="followed-title" data-testid="followed">
    <h2 id="followed-title">Order ${followed.orderId}</h2>
    <p>Status: <strong data-testid="order-status">${view ? view.order.status : followed.result.status}</strong>
      ${complete ? html` · <span class="ok" data-testid="order-complete">complete</span>` : html` · <span class="muted">in progress</span>`}</p>
    ${cascades.length
      ? html`<ul class="cascades">${cascades.map((c) => html`<li>Cascade: ${c.fromBrokerId} → ${c.toBrokerId || "none"} (${c.quantity}): ${c.reason}</li>`)}</ul>`
      : null}
    <div class="scroll"><table data-testid="children">
      <caption class="sr-only">Child orders</caption>
      <thead><tr><th scope="col">Child</th><th scope="col">Broker</th><th scope="col">Qty</th><th scope="col">Filled</th><th scope="col">Avg price</th><th scope="col">Status</th></tr></thead>
      <tbody>${children.map(
        (c) => html`<tr data-status=${c.status}><th scope="row">${c.childOrderId}</th><td>${c.brokerId}</td><td>${c.quantity}</td><td>${c.filledQuantity}</td><td>${inr(c.averagePrice)}</td><td>${c.status}${c.statusReason ? ` (${c.statusReason})` : ""}</td></tr>`,
      )}</tbody>
    </table></div>
    <h3>Live updates</h3>
    <ol class="events" aria-live="polite" data-testid="events">
      ${followed.events.map((m) => html`<li data-type=${m.type}><time>${time(m.timestamp)}</time> ${describe(m)}</li>`)}
    </ol>
  </section>`;
}

export function TicketView({ api, live, session }) {
  const [form, setForm] = useState({
    symbol: "RELIANCE", exchange: "NSE", side: "BUY", quantity: "100", orderType: "MARKET",
    limitPrice: "", triggerPrice: "", product: "CNC", routingObjective: "SMART_BALANCE", maxBrokers: "",
  });
  const [preview, setPreview] = useState(null);
  const [previewError, setPreviewError] = useState(null);
  const [loading, setLoading] = useState(false);
  const [submitError, setSubmitError] = useState(null);
  const [busy, setBusy] = useState(false);
  const [followed, setFollowed] = useState(null);
  const followedRef = useRef(null);
  followedRef.current = followed;
  // Updates can arrive before the POST answers (the push races the response): keep the last
  // few, and replay those of the order once it is followed.
  const recent = useRef([]);
  const problem = localProblem(form);
  // A preview that failed while the server was away is asked again once the socket is back.
  const [retry, setRetry] = useState(0);
  const previewErrorRef = useRef(null);
  previewErrorRef.current = previewError;

  useEffect(() => {
    if (!live) return undefined;
    return live.subscribe((message) => {
      if (message.type === "@state" && message.data.state === "open" && previewErrorRef.current) {
        setRetry((n) => n + 1);
      }
    });
  }, [live]);

  useEffect(() => {
    if (problem) {
      setPreview(null);
      return undefined;
    }
    let cancelled = false;
    setLoading(true);
    const timer = setTimeout(async () => {
      try {
        const answer = await api.post(`${TRADING}/orders/analyze`, requestBody(form));
        if (!cancelled) { setPreview(answer); setPreviewError(null); }
      } catch (exc) {
        if (!cancelled) { setPreview(null); setPreviewError(exc); }
      } finally {
        if (!cancelled) setLoading(false);
      }
    }, DEBOUNCE_MS);
    return () => { cancelled = true; clearTimeout(timer); };
  }, [JSON.stringify(form), api, retry]);

  async function refresh(orderId) {
    try {
      const view = await api.get(`${TRADING}/orders/${encodeURIComponent(orderId)}`);
      setFollowed((f) => (f && f.orderId === orderId ? { ...f, view } : f));
    } catch {
      // The next update retries; the events list still shows what arrived.
    }
  }

  useEffect(() => {
    if (!live) return undefined;
    return live.subscribe((message) => {
      const f = followedRef.current;
      if (f && message.type === "@state" && message.data.state === "open") {
        refresh(f.orderId); // updates missed while disconnected
        return;
      }
      const d = message.data || {};
      if (message.type !== "@state") recent.current = [...recent.current, message].slice(-50);
      if (!f) return;
      if ((d.orderId || d.order_id) !== f.orderId) return;
      setFollowed((cur) => (cur && cur.orderId === f.orderId ? { ...cur, events: [...cur.events, message] } : cur));
      refresh(f.orderId);
    });
  }, [live, api]);

  async function submit(event) {
    event.preventDefault();
    if (problem) { setSubmitError({ message: problem }); return; }
    setBusy(true);
    setSubmitError(null);
    const key = `dash-${crypto.getRandomValues(new Uint32Array(2)).join("")}`;
    try {
      const result = await api.post(`${TRADING}/orders/smart`, { ...requestBody(form), clientOrderId: key });
      rememberOrder(session.user, result.orderId);
      const early = recent.current.filter((m) => m.data && (m.data.orderId || m.data.order_id) === result.orderId);
      setFollowed({ orderId: result.orderId, result, events: early, view: null });
      refresh(result.orderId);
    } catch (exc) {
      setSubmitError(exc);
    } finally {
      setBusy(false);
    }
  }

  return html`<div class="ticket-layout">
    <section class="card" aria-labelledby="ticket-title">
      <h2 id="ticket-title">New order</h2>
      <${OrderForm} form=${form} set=${setForm} onSubmit=${submit} busy=${busy} />
      ${problem ? html`<p class="muted" role="status">${problem}</p>` : null}
      <${ErrorNotice} error=${submitError} />
    </section>
    <section class="card" aria-labelledby="preview-title">
      <h2 id="preview-title">Routing preview</h2>
      <${ErrorNotice} error=${previewError} />
      <${Preview} preview=${preview} loading=${loading} />
    </section>
    <${Followed} followed=${followed} />
  </div>`;
}
