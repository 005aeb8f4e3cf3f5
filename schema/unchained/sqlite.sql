-- This project's own tables (not Django's): created by `unchained migrate`
-- when missing (IF NOT EXISTS: two servers may start at once), ignored by
-- Django and by `unchained check`.

-- The outbox: every letter is stored here in the transaction of the change
-- that causes it, then sent by the mail worker (attempts counts failures)
-- of an instance whose e-mail back end is `backend` (NULL: any instance).
-- A letter whose address can never be sent is given up at `failed_at`.
CREATE TABLE IF NOT EXISTS "unchained_outbox" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, "recipient" varchar(254) NOT NULL, "subject" text NOT NULL, "body" text NOT NULL, "created_at" datetime NOT NULL, "attempts" integer NOT NULL, "next_attempt_at" datetime NOT NULL, "sent_at" datetime NULL, "last_error" text NULL, "backend" varchar(300) NULL, "failed_at" datetime NULL);

CREATE INDEX IF NOT EXISTS "unchained_outbox_due" ON "unchained_outbox" ("next_attempt_at") WHERE "sent_at" IS NULL;

-- How many products each owner has, published and not, kept by the
-- triggers of product_list_sqlite.sql (one row an owner); owner_id -1 is the whole catalog,
-- 0 the products without an owner. The list's paginator reads its exact
-- total here instead of counting the table.
CREATE TABLE IF NOT EXISTS "unchained_product_count" ("owner_id" bigint NOT NULL PRIMARY KEY, "published" bigint NOT NULL, "unpublished" bigint NOT NULL);

-- Failed logins by lock key (django-axes' AXES_LOCKOUT_PARAMETERS): the
-- attributes that are not part of the key are ''. A key whose last failure
-- is older than AXES_COOLOFF_TIME counts from zero again; one with
-- AXES_FAILURE_LIMIT failures is locked until then (`unchained lockouts`).
CREATE TABLE IF NOT EXISTS "unchained_login_failure" ("username" varchar(254) NOT NULL, "ip_address" varchar(45) NOT NULL, "failures" integer NOT NULL, "first_failure_at" datetime NOT NULL, "last_failure_at" datetime NOT NULL, PRIMARY KEY ("username", "ip_address"));

CREATE INDEX IF NOT EXISTS "unchained_login_failure_last" ON "unchained_login_failure" ("last_failure_at");

-- Password-reset requests of the last hour, by address (lowercased) and
-- client address: PASSWORD_RESET_MAX_PER_EMAIL and _PER_CLIENT count them.
CREATE TABLE IF NOT EXISTS "unchained_password_reset" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, "email" varchar(254) NOT NULL, "client" varchar(45) NOT NULL, "requested_at" datetime NOT NULL);

CREATE INDEX IF NOT EXISTS "unchained_password_reset_email" ON "unchained_password_reset" ("email", "requested_at");

CREATE INDEX IF NOT EXISTS "unchained_password_reset_client" ON "unchained_password_reset" ("client", "requested_at");

CREATE INDEX IF NOT EXISTS "unchained_password_reset_at" ON "unchained_password_reset" ("requested_at");
