-- This project's own tables (not Django's): created by `unchained migrate`
-- when missing (IF NOT EXISTS: two servers may start at once), ignored by
-- Django and by `unchained check`. Indexes are declared inside each table:
-- MySQL has no CREATE INDEX IF NOT EXISTS, nor partial indexes.

-- The outbox: every letter is stored here in the transaction of the change
-- that causes it, then sent by the mail worker (attempts counts failures)
-- of an instance whose e-mail back end is `backend` (NULL: any instance).
-- A letter whose address can never be sent is given up at `failed_at`.
CREATE TABLE IF NOT EXISTS `unchained_outbox` (
  `id` bigint(20) NOT NULL AUTO_INCREMENT,
  `recipient` varchar(254) NOT NULL,
  `subject` longtext NOT NULL,
  `body` longtext NOT NULL,
  `created_at` datetime(6) NOT NULL,
  `attempts` int(11) NOT NULL,
  `next_attempt_at` datetime(6) NOT NULL,
  `sent_at` datetime(6) DEFAULT NULL,
  `last_error` longtext DEFAULT NULL,
  `backend` varchar(300) DEFAULT NULL,
  `failed_at` datetime(6) DEFAULT NULL,
  PRIMARY KEY (`id`),
  KEY `unchained_outbox_due` (`sent_at`, `failed_at`, `next_attempt_at`)
) ENGINE=InnoDB;

-- How many products each owner has, published and not, kept by the
-- triggers of product_list_mysql.sql (one row an owner); owner_id -1 is the
-- whole catalog, 0 the products without an owner. The list's paginator
-- reads its exact total here instead of counting the table.
CREATE TABLE IF NOT EXISTS `unchained_product_count` (
  `owner_id` bigint(20) NOT NULL,
  `published` bigint(20) NOT NULL,
  `unpublished` bigint(20) NOT NULL,
  PRIMARY KEY (`owner_id`)
) ENGINE=InnoDB;

-- Failed logins by lock key (django-axes' AXES_LOCKOUT_PARAMETERS): the
-- attributes that are not part of the key are ''. A key whose last failure
-- is older than AXES_COOLOFF_TIME counts from zero again; one with
-- AXES_FAILURE_LIMIT failures is locked until then (`unchained lockouts`).
CREATE TABLE IF NOT EXISTS `unchained_login_failure` (
  `username` varchar(254) NOT NULL,
  `ip_address` varchar(45) NOT NULL,
  `failures` int(11) NOT NULL,
  `first_failure_at` datetime(6) NOT NULL,
  `last_failure_at` datetime(6) NOT NULL,
  PRIMARY KEY (`username`, `ip_address`),
  KEY `unchained_login_failure_last` (`last_failure_at`)
) ENGINE=InnoDB;

-- Password-reset requests of the last hour, by address (lowercased) and
-- client address: PASSWORD_RESET_MAX_PER_EMAIL and _PER_CLIENT count them.
CREATE TABLE IF NOT EXISTS `unchained_password_reset` (
  `id` bigint(20) NOT NULL AUTO_INCREMENT,
  `email` varchar(254) NOT NULL,
  `client` varchar(45) NOT NULL,
  `requested_at` datetime(6) NOT NULL,
  PRIMARY KEY (`id`),
  KEY `unchained_password_reset_email` (`email`, `requested_at`),
  KEY `unchained_password_reset_client` (`client`, `requested_at`),
  KEY `unchained_password_reset_at` (`requested_at`)
) ENGINE=InnoDB;
