-- V7: pre-trade risk. The instrument master (trading rules and the day's price band), the kill
-- switches with their full history, per-trader limits, and an index for counting open orders.

-- One row per instrument; the band is the exchange's for band_date (refreshed daily).
CREATE TABLE instruments (
    symbol VARCHAR(20) NOT NULL,
    exchange VARCHAR(3) NOT NULL CHECK (exchange IN ('NSE', 'BSE')),
    tick_size DECIMAL(12,4) NOT NULL CHECK (tick_size > 0),
    lot_size INTEGER NOT NULL DEFAULT 1 CHECK (lot_size > 0),
    freeze_quantity BIGINT CHECK (freeze_quantity > 0),
    price_band_lower DECIMAL(12,4) NOT NULL CHECK (price_band_lower > 0),
    price_band_upper DECIMAL(12,4) NOT NULL,
    band_date DATE NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (symbol, exchange),
    CONSTRAINT ck_instruments_band CHECK (price_band_lower <= price_band_upper)
);

-- Kill switches are an audit trail: every engage and release is a new row, never an update.
-- The current state of a scope ('GLOBAL' or a trader's user id) is its latest row.
CREATE TABLE kill_switches (
    id BIGSERIAL PRIMARY KEY,
    scope VARCHAR(50) NOT NULL,
    engaged BOOLEAN NOT NULL,
    reason TEXT NOT NULL CHECK (length(reason) > 0),
    actor VARCHAR(100) NOT NULL,
    changed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX idx_kill_switches_scope_latest ON kill_switches (scope, id DESC);

-- Per-trader overrides of the default limits (settings); NULL keeps the default.
CREATE TABLE trader_risk_limits (
    user_id VARCHAR(50) PRIMARY KEY,
    max_order_quantity BIGINT CHECK (max_order_quantity > 0),
    max_order_value_inr DECIMAL(16,2) CHECK (max_order_value_inr > 0),
    max_open_orders INTEGER CHECK (max_open_orders > 0),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- A trader's open orders are counted on every order: only working children are indexed.
CREATE INDEX idx_child_orders_open_by_user ON child_orders (user_id, order_id)
    WHERE status IN ('PENDING', 'PLACED', 'PARTIALLY_FILLED');
