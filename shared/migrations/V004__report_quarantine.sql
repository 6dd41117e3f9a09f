-- V4: execution reports that cannot be true are quarantined, and the database itself refuses
-- impossible quantities and prices (docs/execution-tracking.md, "Validation and quarantine").

-- A report that is authenticated and well formed but impossible for its child (another symbol,
-- more than the child's quantity, a price 10x the market...): held here with its reason, never
-- applied. The same report stored twice is one row (fingerprint = SHA-256 of the normalised
-- report); a different report with the same key (a broker's correction) is judged afresh.
CREATE TABLE quarantined_reports (
    id BIGSERIAL PRIMARY KEY,
    fingerprint CHAR(64) NOT NULL UNIQUE,
    report_key VARCHAR(200) NOT NULL,
    broker_id VARCHAR(50) NOT NULL,
    broker_order_id VARCHAR(64),
    child_order_id VARCHAR(50),
    order_id VARCHAR(50),
    stage VARCHAR(10) NOT NULL CHECK (stage IN ('webhook', 'tracking')),
    reason VARCHAR(40) NOT NULL,
    field VARCHAR(64),
    message TEXT NOT NULL,
    report JSONB NOT NULL,
    quarantined_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX idx_quarantined_reports_at ON quarantined_reports (quarantined_at);
CREATE INDEX idx_quarantined_reports_key ON quarantined_reports (report_key);

-- Non-negative quantities and positive prices, wherever they are stored.
ALTER TABLE orders
    ADD CONSTRAINT ck_orders_limit_price CHECK (limit_price IS NULL OR limit_price > 0),
    ADD CONSTRAINT ck_orders_trigger_price CHECK (trigger_price IS NULL OR trigger_price > 0);

ALTER TABLE child_orders
    ADD CONSTRAINT ck_child_orders_filled_within_quantity CHECK (filled_quantity <= quantity),
    ADD CONSTRAINT ck_child_orders_average_iff_filled
        CHECK ((filled_quantity = 0) = (average_price IS NULL)),
    ADD CONSTRAINT ck_child_orders_average_price CHECK (average_price IS NULL OR average_price > 0),
    ADD CONSTRAINT ck_child_orders_prices CHECK (
        (limit_price IS NULL OR limit_price > 0)
        AND (expected_price IS NULL OR expected_price > 0)
        AND (arrival_bid IS NULL OR arrival_bid > 0)
        AND (arrival_ask IS NULL OR arrival_ask > 0));

ALTER TABLE execution_metrics
    ADD CONSTRAINT ck_execution_metrics_filled CHECK (filled_quantity IS NULL OR filled_quantity >= 0),
    ADD CONSTRAINT ck_execution_metrics_fill_price CHECK (fill_price IS NULL OR fill_price > 0),
    ADD CONSTRAINT ck_execution_metrics_charges CHECK (charges_inr IS NULL OR charges_inr >= 0),
    ADD CONSTRAINT ck_execution_metrics_latency
        CHECK (execution_latency_ms IS NULL OR execution_latency_ms >= 0),
    ADD CONSTRAINT ck_execution_metrics_fill_rate CHECK (fill_rate IS NULL OR fill_rate BETWEEN 0 AND 100),
    ADD CONSTRAINT ck_execution_metrics_quality
        CHECK (execution_quality_score IS NULL OR execution_quality_score BETWEEN 0 AND 1);

ALTER TABLE order_allocations
    ADD CONSTRAINT ck_order_allocations_expected_price
        CHECK (expected_execution_price IS NULL OR expected_execution_price > 0);

-- A child never fills more than its own quantity (the CHECK above). An ORDER may hold more than
-- it asked for in one case only: a broker filled a child after it timed out and its quantity was
-- cascaded to another broker (a child with attempt > 1). That fill is real, so it is stored, and
-- the order must then say OVERFILLED. Checked at commit (deferred), because the tracker writes
-- the children first and the order's status after them in the same transaction.
CREATE FUNCTION check_order_fill() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    o RECORD;
    filled BIGINT;
    cascaded BOOLEAN;
BEGIN
    SELECT order_id, quantity, status INTO o FROM orders WHERE order_id = NEW.order_id;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    SELECT COALESCE(sum(filled_quantity), 0), COALESCE(bool_or(attempt > 1), FALSE)
        INTO filled, cascaded
        FROM child_orders WHERE order_id = o.order_id;
    IF filled > o.quantity AND NOT (cascaded AND o.status = 'OVERFILLED') THEN
        RAISE EXCEPTION 'order % holds % filled of %: only a cascaded order marked OVERFILLED may',
            o.order_id, filled, o.quantity
            USING ERRCODE = 'check_violation', CONSTRAINT = 'ck_orders_fill_within_quantity';
    END IF;
    RETURN NULL;
END;
$$;

-- Only rows that can break the rule are checked: a child gaining fills, an order leaving
-- OVERFILLED or shrinking (routing's inserts and status changes pay nothing).
CREATE CONSTRAINT TRIGGER trg_child_orders_fill_within_order
    AFTER INSERT OR UPDATE OF filled_quantity ON child_orders
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NEW.filled_quantity > 0)
    EXECUTE FUNCTION check_order_fill();

CREATE CONSTRAINT TRIGGER trg_orders_fill_within_quantity
    AFTER UPDATE OF status, quantity ON orders
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN ((OLD.status = 'OVERFILLED' AND NEW.status <> 'OVERFILLED')
                       OR NEW.quantity < OLD.quantity)
    EXECUTE FUNCTION check_order_fill();
