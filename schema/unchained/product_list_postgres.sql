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

-- Adds to one owner's counts (the row is made on first use).
CREATE OR REPLACE FUNCTION unchained_add_products(owner bigint, added_published bigint, added_unpublished bigint)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO unchained_product_count AS c (owner_id, published, unpublished)
    VALUES (owner, added_published, added_unpublished)
    ON CONFLICT (owner_id) DO UPDATE
    SET published = c.published + EXCLUDED.published,
        unpublished = c.unpublished + EXCLUDED.unpublished;
$$;

-- Count rows are changed in ascending owner_id order (-1 first), so two
-- writers never wait for each other's rows the other way round.
CREATE OR REPLACE FUNCTION unchained_count_product() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    old_owner bigint := 0;
    new_owner bigint := 0;
    old_pub int := 0; old_unpub int := 0;
    new_pub int := 0; new_unpub int := 0;
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        old_owner := coalesce(OLD.owner_id, 0);
        old_pub := OLD.is_moderated::int;
        old_unpub := 1 - old_pub;
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        new_owner := coalesce(NEW.owner_id, 0);
        new_pub := NEW.is_moderated::int;
        new_unpub := 1 - new_pub;
    END IF;
    PERFORM unchained_add_products(-1, new_pub - old_pub, new_unpub - old_unpub);
    IF TG_OP = 'INSERT' THEN
        PERFORM unchained_add_products(new_owner, new_pub, new_unpub);
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM unchained_add_products(old_owner, -old_pub, -old_unpub);
    ELSIF old_owner = new_owner THEN
        PERFORM unchained_add_products(old_owner, new_pub - old_pub, new_unpub - old_unpub);
    ELSIF old_owner < new_owner THEN
        PERFORM unchained_add_products(old_owner, -old_pub, -old_unpub);
        PERFORM unchained_add_products(new_owner, new_pub, new_unpub);
    ELSE
        PERFORM unchained_add_products(new_owner, new_pub, new_unpub);
        PERFORM unchained_add_products(old_owner, -old_pub, -old_unpub);
    END IF;
    RETURN NULL;
END;
$$;

-- TRUNCATE fires no row triggers: it empties the counts instead.
CREATE OR REPLACE FUNCTION unchained_count_no_products() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM unchained_product_count;
    RETURN NULL;
END;
$$;

DROP TRIGGER IF EXISTS unchained_product_inserted ON catalog_product;
CREATE TRIGGER unchained_product_inserted AFTER INSERT ON catalog_product
    FOR EACH ROW EXECUTE FUNCTION unchained_count_product();
DROP TRIGGER IF EXISTS unchained_product_deleted ON catalog_product;
CREATE TRIGGER unchained_product_deleted AFTER DELETE ON catalog_product
    FOR EACH ROW EXECUTE FUNCTION unchained_count_product();
DROP TRIGGER IF EXISTS unchained_product_moved ON catalog_product;
CREATE TRIGGER unchained_product_moved AFTER UPDATE OF owner_id, is_moderated ON catalog_product
    FOR EACH ROW
    WHEN (OLD.owner_id IS DISTINCT FROM NEW.owner_id OR OLD.is_moderated IS DISTINCT FROM NEW.is_moderated)
    EXECUTE FUNCTION unchained_count_product();
DROP TRIGGER IF EXISTS unchained_product_truncated ON catalog_product;
CREATE TRIGGER unchained_product_truncated AFTER TRUNCATE ON catalog_product
    FOR EACH STATEMENT EXECUTE FUNCTION unchained_count_no_products();

DELETE FROM unchained_product_count;
INSERT INTO unchained_product_count (owner_id, published, unpublished)
    SELECT -1, count(*) FILTER (WHERE is_moderated), count(*) FILTER (WHERE NOT is_moderated) FROM catalog_product
    UNION ALL
    SELECT coalesce(owner_id, 0), count(*) FILTER (WHERE is_moderated), count(*) FILTER (WHERE NOT is_moderated)
      FROM catalog_product GROUP BY coalesce(owner_id, 0);
