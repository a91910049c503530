-- Webhook endpoints (`/webhooks`, admin scope): where a tenant's job events are POSTed, signed with the
-- endpoint's secrets (newest first; two while a rotation overlaps). Read by the `notifications` consumer.
CREATE TABLE webhooks (
    webhook_id uuid PRIMARY KEY,
    tenant     text NOT NULL,
    url        text NOT NULL,
    events     text[] NOT NULL,
    secrets    text[] NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhooks_by_tenant ON webhooks (tenant);

-- Deliveries that failed every attempt, per endpoint: what was sent and why it failed, for the operator.
CREATE TABLE webhook_dead_letters (
    webhook_id uuid NOT NULL REFERENCES webhooks ON DELETE CASCADE,
    event_id   text NOT NULL,
    payload    jsonb NOT NULL,
    attempts   integer NOT NULL,
    error      text NOT NULL,
    failed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (webhook_id, event_id)
);
