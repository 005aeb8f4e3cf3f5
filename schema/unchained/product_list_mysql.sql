-- What the product list reads, on Django's catalog_product table: indexes
-- for its order (-created_at, -id) and for each part of its visibility
-- rule, and triggers that keep unchained_product_count right whoever
-- writes (Django included). Django never sees these objects. MySQL has no
-- partial indexes: the visibility columns lead instead. No index here may
-- begin with a foreign key's column (owner_id, category_id): InnoDB would
-- silently drop the index it made for that key when Django added the
-- constraint (`catalog_product_owner_id_..._fk_users_user_id`), as one that
-- can serve the key now exists, and Django's schema would differ.
--
-- Run again whenever one of them is missing (a Django migration may
-- drop them); the caller then counts the products afresh
-- (PRODUCT_RECOUNT in db/schema.rs) with writers held off.

CREATE INDEX IF NOT EXISTS `unchained_product_newest` ON `catalog_product` (`created_at`, `id`);
CREATE INDEX IF NOT EXISTS `unchained_product_published_newest` ON `catalog_product` (`is_moderated`, `created_at`, `id`);
CREATE INDEX IF NOT EXISTS `unchained_product_unpublished_by_owner` ON `catalog_product` (`is_moderated`, `owner_id`, `created_at`, `id`);

-- Row triggers (MySQL has no others), each one upsert: a row's counts
-- move for its owner and for the whole catalog (-1). Rows of one VALUES
-- list with the same owner add up in turn.
DROP TRIGGER IF EXISTS `unchained_product_inserted`;
CREATE TRIGGER `unchained_product_inserted` AFTER INSERT ON `catalog_product` FOR EACH ROW
    INSERT INTO `unchained_product_count` (`owner_id`, `published`, `unpublished`) VALUES
        (-1, NEW.`is_moderated` <> 0, NEW.`is_moderated` = 0),
        (coalesce(NEW.`owner_id`, 0), NEW.`is_moderated` <> 0, NEW.`is_moderated` = 0)
    ON DUPLICATE KEY UPDATE `published` = `published` + VALUES(`published`),
                            `unpublished` = `unpublished` + VALUES(`unpublished`);

DROP TRIGGER IF EXISTS `unchained_product_deleted`;
CREATE TRIGGER `unchained_product_deleted` AFTER DELETE ON `catalog_product` FOR EACH ROW
    INSERT INTO `unchained_product_count` (`owner_id`, `published`, `unpublished`) VALUES
        (-1, -(OLD.`is_moderated` <> 0), -(OLD.`is_moderated` = 0)),
        (coalesce(OLD.`owner_id`, 0), -(OLD.`is_moderated` <> 0), -(OLD.`is_moderated` = 0))
    ON DUPLICATE KEY UPDATE `published` = `published` + VALUES(`published`),
                            `unpublished` = `unpublished` + VALUES(`unpublished`);

DROP TRIGGER IF EXISTS `unchained_product_moved`;
CREATE TRIGGER `unchained_product_moved` AFTER UPDATE ON `catalog_product` FOR EACH ROW
    INSERT INTO `unchained_product_count` (`owner_id`, `published`, `unpublished`) VALUES
        (coalesce(OLD.`owner_id`, 0), -(OLD.`is_moderated` <> 0), -(OLD.`is_moderated` = 0)),
        (coalesce(NEW.`owner_id`, 0), NEW.`is_moderated` <> 0, NEW.`is_moderated` = 0),
        (-1, (NEW.`is_moderated` <> 0) - (OLD.`is_moderated` <> 0), (NEW.`is_moderated` = 0) - (OLD.`is_moderated` = 0))
    ON DUPLICATE KEY UPDATE `published` = `published` + VALUES(`published`),
                            `unpublished` = `unpublished` + VALUES(`unpublished`);
