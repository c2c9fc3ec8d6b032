CREATE TABLE IF NOT EXISTS merchants (
    id bigint PRIMARY KEY,
    name text NOT NULL,
    balance_cents bigint NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS payments (
    id bigserial PRIMARY KEY,
    merchant_id bigint NOT NULL,
    amount_cents bigint NOT NULL,
    currency text NOT NULL DEFAULT 'usd',
    status text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS payments_status ON payments (status);
CREATE TABLE IF NOT EXISTS receipts (
    payment_id bigint PRIMARY KEY,
    body text NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO merchants (id, name) VALUES (1, 'acme'), (2, 'globex') ON CONFLICT DO NOTHING;
