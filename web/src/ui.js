// Shared pieces: htm bound to Preact, formatting, error and "not available" notices, charts.
import { h } from "preact";
import { useEffect, useRef } from "preact/hooks";
import htm from "htm";
import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip,
} from "chart.js";

Chart.register(BarController, BarElement, CategoryScale, Legend, LinearScale, LineController, LineElement, PointElement, Tooltip);
Chart.defaults.color = "#1f2933";
Chart.defaults.font.family = "system-ui, sans-serif";

export const html = htm.bind(h);

// Colour-blind-safe palette (Okabe-Ito), all with at least 3:1 contrast against white.
export const PALETTE = ["#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000"];

export const num = (value, digits = 2) =>
  value === null || value === undefined || value === "" || Number.isNaN(Number(value))
    ? "–"
    : Number(value).toLocaleString("en-IN", { minimumFractionDigits: digits, maximumFractionDigits: digits });
export const inr = (value) => (value === null || value === undefined ? "–" : `₹${num(value, 2)}`);
export const pct = (value, digits = 1) => (value === null || value === undefined ? "–" : `${num(value, digits)}%`);
export const time = (iso) => (iso ? new Date(iso).toLocaleTimeString("en-IN", { hour12: false }) : "–");

export function ErrorNotice({ error, onRetry }) {
  if (!error) return null;
  const status = error.status === undefined ? "" : error.status === 0 ? "network" : `HTTP ${error.status}`;
  return html`<div class="notice error" role="alert">
    <strong>${status ? `${status}: ` : ""}</strong>${error.explanation || error.message}
    ${onRetry ? html` <button type="button" onClick=${onRetry}>Retry</button>` : null}
  </div>`;
}

export function Unavailable({ what }) {
  return html`<div class="notice unavailable" role="status" data-testid="unavailable">
    <strong>Not available:</strong> ${what} is not served by this deployment yet (the API answered 404).
  </div>`;
}

// A Chart.js chart whose data is described in text too (role="img" + aria-label); the data is
// also on the page as a table next to every chart.
export function ChartView({ type, data, options, label, testid }) {
  const canvas = useRef(null);
  const chart = useRef(null);
  useEffect(() => {
    chart.current = new Chart(canvas.current, {
      type,
      data,
      options: { responsive: true, maintainAspectRatio: false, animation: false, ...options },
    });
    return () => chart.current.destroy();
  }, []);
  useEffect(() => {
    if (!chart.current) return;
    chart.current.data = data;
    chart.current.update();
  }, [data]);
  return html`<figure class="chart">
    <div class="chart-box"><canvas ref=${canvas} role="img" aria-label=${label} data-testid=${testid}></canvas></div>
    <figcaption>${label}</figcaption>
  </figure>`;
}

export function dataset(label, values, index) {
  const colour = PALETTE[index % PALETTE.length];
  return { label, data: values, backgroundColor: colour, borderColor: colour, borderWidth: 2 };
}
