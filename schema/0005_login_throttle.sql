-- Failed logins are pruned by the start of their window on every new failure.
CREATE INDEX login_failures_by_window ON login_failures (window_start);
