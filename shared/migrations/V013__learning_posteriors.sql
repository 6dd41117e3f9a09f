-- V13: learning with uncertainty (docs/routing-engine.md, "Learning").
-- Each profile keeps the discounted evidence behind its averages (counts for the Beta posteriors
-- of its rates, weight/mean/sum of squares for its continuous factors) and the beliefs derived
-- from them; broker-wide evidence, pooled across symbols, is the prior of every symbol.

ALTER TABLE broker_execution_profiles
    ADD COLUMN evidence JSONB,
    ADD COLUMN uncertainty JSONB;

CREATE TABLE broker_evidence (
    broker_id VARCHAR(50) PRIMARY KEY REFERENCES brokers (broker_id),
    evidence JSONB NOT NULL DEFAULT '{}'::jsonb,
    sample_count BIGINT NOT NULL DEFAULT 0 CHECK (sample_count >= 0),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
