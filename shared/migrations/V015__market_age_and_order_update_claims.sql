-- Day one (issue 16).
--
-- market_updated_at: when a profile's market figures (spread, depth, volume, last price) were
-- last taken from a fresh quote (the statistics refresh, a day-one template). Routing excludes
-- a broker whose figures are older than ROUTER_MARKET_STATS_MAX_AGE_S with STALE_MARKET_DATA;
-- NULL (seeded or declared figures, rows from before this migration) is not checked. The age
-- of what was learned from executions (last_updated) no longer excludes: a quiet symbol's
-- profile routes with less confidence (docs/routing-engine.md, "Day one").
ALTER TABLE broker_execution_profiles ADD COLUMN IF NOT EXISTS market_updated_at TIMESTAMP NULL;

-- order_update_claims: one row per order and final status announced as ORDER_UPDATE
-- (COMPLETED, OVERFILLED, REJECTED). Whoever inserts the row pushes; a duplicate report, a
-- concurrent tracker or a second placement event finds it and pushes nothing
-- (docs/websocket.md).
CREATE TABLE IF NOT EXISTS order_update_claims (
    order_id VARCHAR(50) NOT NULL REFERENCES orders (order_id),
    order_status VARCHAR(32) NOT NULL,
    claimed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, order_status)
);
