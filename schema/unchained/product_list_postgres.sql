-- What the product list reads, on Django's catalog_product table: indexes
-- for its order (-created_at, -id) and for each part of its visibility
-- rule, and triggers that keep unchained_product_count right whoever
-- writes (Django included). Django never sees these objects.
--
-- Run as one script in a transaction that holds catalog_product against
-- writers, again whenever one of them is missing (a Django migration may
-- drop them), so it ends by counting the products afresh.

CREATE INDEX IF NOT EXISTS unchained_product_newest ON catalog_product USING btree (created_at, id);
CREATE INDEX IF NOT EXISTS unchained_product_published_newest ON catalog_product USING btree (created_at, id) WHERE is_moderated;
CREATE INDEX IF NOT EXISTS unchained_product_unpublished_by_owner ON catalog_product USING btree (owner_id, created_at, id) WHERE NOT is_moderated;

-- One statement's changes as rows of counts to add: a row per owner whose
-- counts moved, and one for the whole catalog (-1). Statement triggers with
-- transition tables, so a bulk insert adds a few rows, not one per product.
CREATE OR REPLACE FUNCTION unchained_count_products() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO unchained_product_count (owner_id, published, unpublished)
        SELECT owner, sum(published), sum(unpublished) FROM (
            SELECT coalesce(owner_id, 0) AS owner, is_moderated::int AS published, 1 - is_moderated::int AS unpublished FROM new_products
            UNION ALL
            SELECT -1, is_moderated::int, 1 - is_moderated::int FROM new_products
        ) AS changes GROUP BY owner;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO unchained_product_count (owner_id, published, unpublished)
        SELECT owner, -sum(published), -sum(unpublished) FROM (
            SELECT coalesce(owner_id, 0) AS owner, is_moderated::int AS published, 1 - is_moderated::int AS unpublished FROM old_products
            UNION ALL
            SELECT -1, is_moderated::int, 1 - is_moderated::int FROM old_products
        ) AS changes GROUP BY owner;
    ELSE
        INSERT INTO unchained_product_count (owner_id, published, unpublished)
        SELECT owner, sum(published), sum(unpublished) FROM (
            SELECT coalesce(owner_id, 0) AS owner, is_moderated::int AS published, 1 - is_moderated::int AS unpublished FROM new_products
            UNION ALL
            SELECT -1, is_moderated::int, 1 - is_moderated::int FROM new_products
            UNION ALL
            SELECT coalesce(owner_id, 0), -is_moderated::int, is_moderated::int - 1 FROM old_products
            UNION ALL
            SELECT -1, -is_moderated::int, is_moderated::int - 1 FROM old_products
        ) AS changes GROUP BY owner
        HAVING sum(published) <> 0 OR sum(unpublished) <> 0;
    END IF;
    RETURN NULL;
END;
$$;

-- TRUNCATE fires no row trigger: it empties the counts instead.
CREATE OR REPLACE FUNCTION unchained_count_no_products() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM unchained_product_count;
    RETURN NULL;
END;
$$;

DROP TRIGGER IF EXISTS unchained_product_inserted ON catalog_product;
CREATE TRIGGER unchained_product_inserted AFTER INSERT ON catalog_product
    REFERENCING NEW TABLE AS new_products
    FOR EACH STATEMENT EXECUTE FUNCTION unchained_count_products();
DROP TRIGGER IF EXISTS unchained_product_deleted ON catalog_product;
CREATE TRIGGER unchained_product_deleted AFTER DELETE ON catalog_product
    REFERENCING OLD TABLE AS old_products
    FOR EACH STATEMENT EXECUTE FUNCTION unchained_count_products();
DROP TRIGGER IF EXISTS unchained_product_moved ON catalog_product;
CREATE TRIGGER unchained_product_moved AFTER UPDATE ON catalog_product
    REFERENCING OLD TABLE AS old_products NEW TABLE AS new_products
    FOR EACH STATEMENT EXECUTE FUNCTION unchained_count_products();
DROP TRIGGER IF EXISTS unchained_product_truncated ON catalog_product;
CREATE TRIGGER unchained_product_truncated AFTER TRUNCATE ON catalog_product
    FOR EACH STATEMENT EXECUTE FUNCTION unchained_count_no_products();

DELETE FROM unchained_product_count;
INSERT INTO unchained_product_count (owner_id, published, unpublished)
    SELECT -1, count(*) FILTER (WHERE is_moderated), count(*) FILTER (WHERE NOT is_moderated) FROM catalog_product
    UNION ALL
    SELECT coalesce(owner_id, 0), count(*) FILTER (WHERE is_moderated), count(*) FILTER (WHERE NOT is_moderated)
      FROM catalog_product GROUP BY coalesce(owner_id, 0);
