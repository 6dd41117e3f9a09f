-- V11: reconciliation by polling (docs/execution-tracking.md, "Reconciliation by polling").
-- A child that no terminal report settled is asked for at its broker on a schedule; polled_at
-- spreads the work, so each run takes the children asked for least recently.

ALTER TABLE child_orders ADD COLUMN polled_at TIMESTAMPTZ;

-- The poller's scan stays on the few children still working (or timed out, unconfirmed).
CREATE INDEX idx_child_orders_unsettled ON child_orders (placed_at)
    WHERE status IN ('PLACED', 'PARTIALLY_FILLED', 'TIMED_OUT');
