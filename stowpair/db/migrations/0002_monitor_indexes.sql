-- stowpair schema version 2: indexes for the monitor's filters (/monitor/export, its
-- /count and the console): status, exporter, queue, study, newest first by update or
-- creation time.

CREATE INDEX task_status_updated ON task (task_status, updated_time);
CREATE INDEX task_exporter_status ON task (exporter_id, task_status, updated_time);
CREATE INDEX task_queue_status ON task (queue_name, task_status, updated_time);
CREATE INDEX task_study ON task (study_iuid);
CREATE INDEX task_created ON task (created_time);
