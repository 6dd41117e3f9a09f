// Orders this browser submitted, per user (localStorage): the blotter's fallback while the order
// history route (GET /orders) is not served, and the ids the ticket keeps following.

const KEY = (user) => `order-router.orders.${user}`;
export const TERMINAL_CHILD = new Set(["FILLED", "REJECTED", "TIMED_OUT", "CANCELLED"]);

export function rememberOrder(user, orderId) {
  const ids = knownOrders(user).filter((id) => id !== orderId);
  localStorage.setItem(KEY(user), JSON.stringify([orderId, ...ids].slice(0, 200)));
}

export function knownOrders(user) {
  try {
    const ids = JSON.parse(localStorage.getItem(KEY(user)) || "[]");
    return Array.isArray(ids) ? ids.filter((id) => typeof id === "string") : [];
  } catch {
    return [];
  }
}

// Average fill price, filled quantity and all-in charges of an OrderView.
export function fills(view) {
  let quantity = 0;
  let notional = 0;
  let charges = 0;
  let chargesKnown = false;
  for (const execution of view.executions || []) {
    const q = Number(execution.filledQuantity || 0);
    if (q > 0 && execution.fillPrice !== null && execution.fillPrice !== undefined) {
      quantity += q;
      notional += q * Number(execution.fillPrice);
    }
    if (execution.chargesInr !== null && execution.chargesInr !== undefined) {
      charges += Number(execution.chargesInr);
      chargesKnown = true;
    }
  }
  if (!quantity) {
    for (const child of view.childOrders || []) {
      const q = Number(child.filledQuantity || 0);
      if (q > 0 && child.averagePrice) {
        quantity += q;
        notional += q * Number(child.averagePrice);
      }
    }
  }
  const order = view.order || {};
  const arrival = order.arrivalPrice ?? order.arrivalMid ?? order.expectedPrice ?? null;
  const average = quantity ? notional / quantity : null;
  const sign = order.side === "SELL" ? -1 : 1;
  const slippageBps = average !== null && arrival ? (sign * (average - Number(arrival)) / Number(arrival)) * 10000 : null;
  const chargesInr = chargesKnown ? charges : order.expectedChargesInr !== null && order.expectedChargesInr !== undefined ? Number(order.expectedChargesInr) : null;
  return {
    filled: quantity,
    average,
    arrival: arrival === null ? null : Number(arrival),
    slippageBps,
    chargesInr,
    allInInr: chargesInr === null ? null : notional * sign + chargesInr,
    chargesEstimated: !chargesKnown,
  };
}
