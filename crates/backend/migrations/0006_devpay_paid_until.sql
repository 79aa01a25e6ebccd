ALTER TABLE devpay_subscriptions ADD COLUMN paid_until TEXT;
