-- V5: what the reconciler needs to finish an order whose process died before placing it.

-- The engine's whole decision, so a reconciled order answers exactly as a placed one would
-- (the columns of V2/V3 keep the total charges, not their itemisation). NULL for older rows.
ALTER TABLE order_routing_decisions ADD COLUMN decision JSONB;

-- Orders still waiting for their answer: the reconciler's scan stays on this small index.
CREATE INDEX idx_orders_unanswered ON orders (created_at) WHERE response IS NULL;
