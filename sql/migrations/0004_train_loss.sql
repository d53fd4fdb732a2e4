-- 0004_train_loss.sql: a bounded loss history per training task, for the
-- dashboard's loss curve (GET /api/v1/jobs/{id}/loss).
--
-- Training tasks report "step N/M loss X ..." progress lines
-- (tasks/removal/run.c); a trigger on attempt_log copies each one's step and
-- loss here, whatever path inserted the line. Only lines whose step and loss
-- start with a digit are taken (CAST reads the number's longest prefix).
-- When a task holds more than 1000 points every second one is dropped
-- (the first and the newest kept), so a long run keeps its whole shape at
-- a coarser grain and the table stays bounded.
CREATE TABLE train_loss (
    id         INTEGER PRIMARY KEY,
    task_id    INTEGER NOT NULL REFERENCES task(id),
    attempt_id INTEGER NOT NULL REFERENCES attempt(id),
    step       INTEGER NOT NULL,
    loss       REAL NOT NULL,
    t          INTEGER NOT NULL
);
CREATE INDEX train_loss_task ON train_loss(task_id, id);
CREATE TRIGGER attempt_log_train_loss AFTER INSERT ON attempt_log
WHEN NEW.text GLOB 'step [0-9]*/[0-9]* loss [0-9]*'
BEGIN
    INSERT INTO train_loss(task_id, attempt_id, step, loss, t)
    SELECT a.task_id, NEW.attempt_id, CAST(substr(NEW.text, 6) AS INTEGER),
           CAST(substr(NEW.text, instr(NEW.text, ' loss ') + 6) AS REAL), NEW.t
    FROM attempt a WHERE a.id = NEW.attempt_id;
END;
CREATE TRIGGER train_loss_cap AFTER INSERT ON train_loss
WHEN (SELECT COUNT(*) FROM train_loss WHERE task_id = NEW.task_id) > 1000
BEGIN
    DELETE FROM train_loss WHERE id IN (
        SELECT id FROM (SELECT id, row_number() OVER (ORDER BY id) AS rn
                        FROM train_loss WHERE task_id = NEW.task_id)
        WHERE rn % 2 = 0 AND id <> NEW.id);
END;
