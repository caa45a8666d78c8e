-- One live sandbox per user, enforced by the database so two concurrent starts cannot both win.
CREATE UNIQUE INDEX one_running_sandbox_per_user ON sandboxes (user_id) WHERE state = 'running';
