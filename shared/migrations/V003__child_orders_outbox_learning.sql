-- V3: what a real system needs beside the specification's tables.
-- Only additive changes to the V2 tables: new columns with defaults, new constraints, new indexes.

-- Profiles learn: how many reports the averages rest on, and market facts the engine needs.
ALTER TABLE broker_execution_profiles
    ADD COLUMN sample_count BIGINT NOT NULL DEFAULT 0 CHECK (sample_count >= 0),
    ADD COLUMN volatility_bps DECIMAL(8,4),
    ADD COLUMN last_price DECIMAL(12,4),
    ADD CONSTRAINT fk_profiles_broker FOREIGN KEY (broker_id) REFERENCES brokers (broker_id);

-- One decision per order (idempotency) and the full explanation for the audit trail.
ALTER TABLE order_routing_decisions
    ADD COLUMN expected_price DECIMAL(12,4),
    ADD COLUMN expected_fill_probability DECIMAL(5,4),
    ADD COLUMN expected_charges_inr DECIMAL(14,4),
    ADD COLUMN expected_total_cost_inr DECIMAL(14,4),
    ADD COLUMN fallback_broker_ids TEXT[] NOT NULL DEFAULT '{}',
    ADD COLUMN broker_scores JSONB NOT NULL DEFAULT '[]'::jsonb,
    ADD CONSTRAINT uq_routing_decisions_order UNIQUE (order_id),
    ADD CONSTRAINT fk_routing_decisions_order FOREIGN KEY (order_id) REFERENCES orders (order_id);

-- Allocations hold whole quantities; percentages derive from them.
ALTER TABLE order_allocations
    ADD COLUMN quantity BIGINT CHECK (quantity > 0),
    ADD COLUMN slices INTEGER NOT NULL DEFAULT 1 CHECK (slices >= 1),
    ADD COLUMN expected_cost_inr DECIMAL(14,4),
    ADD COLUMN cascaded_from VARCHAR(50);

CREATE INDEX idx_order_allocations_decision ON order_allocations (routing_decision_id);

-- Child orders: what was actually sent to each broker and what came back.
CREATE TABLE child_orders (
    child_order_id VARCHAR(50) PRIMARY KEY,
    order_id VARCHAR(50) NOT NULL REFERENCES orders (order_id),
    allocation_id BIGINT REFERENCES order_allocations (id),
    user_id VARCHAR(50) NOT NULL,
    broker_id VARCHAR(50) NOT NULL REFERENCES brokers (broker_id),
    broker_order_id VARCHAR(64),
    symbol VARCHAR(20) NOT NULL,
    side VARCHAR(4) NOT NULL,
    quantity BIGINT NOT NULL CHECK (quantity > 0),
    order_type VARCHAR(20) NOT NULL,
    limit_price DECIMAL(12,4),
    expected_price DECIMAL(12,4),
    arrival_bid DECIMAL(12,4),
    arrival_ask DECIMAL(12,4),
    status VARCHAR(20) NOT NULL DEFAULT 'PENDING',
    filled_quantity BIGINT NOT NULL DEFAULT 0 CHECK (filled_quantity >= 0),
    average_price DECIMAL(12,4),
    attempt INTEGER NOT NULL DEFAULT 1,
    status_reason TEXT,
    placed_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT uq_child_orders_broker_order UNIQUE (broker_id, broker_order_id)
);

CREATE INDEX idx_child_orders_order ON child_orders (order_id);

-- Execution reports are stored once: report_key = broker + broker order id + status + filled qty.
ALTER TABLE execution_metrics
    ADD COLUMN user_id VARCHAR(50),
    ADD COLUMN child_order_id VARCHAR(50),
    ADD COLUMN report_key VARCHAR(200),
    ADD COLUMN status VARCHAR(20),
    ADD COLUMN filled_quantity BIGINT,
    ADD COLUMN fill_price DECIMAL(12,4),
    ADD COLUMN charges_inr DECIMAL(14,4),
    ADD CONSTRAINT uq_execution_metrics_report_key UNIQUE (report_key);

CREATE INDEX idx_execution_metrics_user_created ON execution_metrics (user_id, created_at);

-- Transactional outbox: events are written with the state change and published after commit.
CREATE TABLE event_outbox (
    id BIGSERIAL PRIMARY KEY,
    event_id UUID NOT NULL UNIQUE,
    source VARCHAR(64) NOT NULL,
    detail_type VARCHAR(64) NOT NULL,
    detail JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    published_at TIMESTAMPTZ,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);

CREATE INDEX idx_event_outbox_pending ON event_outbox (id) WHERE published_at IS NULL;
