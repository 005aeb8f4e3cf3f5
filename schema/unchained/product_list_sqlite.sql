-- What the product list reads, on Django's catalog_product table: indexes
-- for its order (-created_at, -id) and for each part of its visibility
-- rule, and triggers that keep unchained_product_count right whoever
-- writes (Django included). Django never sees these objects.
--
-- Run as one script in a write transaction, again whenever one of them is
-- missing (a Django migration that rebuilds catalog_product drops them),
-- so it ends by counting the products afresh.

CREATE INDEX IF NOT EXISTS "unchained_product_newest" ON "catalog_product" ("created_at", "id");
CREATE INDEX IF NOT EXISTS "unchained_product_published_newest" ON "catalog_product" ("created_at", "id") WHERE "is_moderated";
CREATE INDEX IF NOT EXISTS "unchained_product_unpublished_by_owner" ON "catalog_product" ("owner_id", "created_at", "id") WHERE NOT "is_moderated";

DROP TRIGGER IF EXISTS "unchained_product_inserted";
CREATE TRIGGER "unchained_product_inserted" AFTER INSERT ON "catalog_product"
BEGIN
    INSERT OR IGNORE INTO "unchained_product_count" VALUES (-1, 0, 0), (coalesce(NEW."owner_id", 0), 0, 0);
    UPDATE "unchained_product_count"
       SET "published" = "published" + (NEW."is_moderated" != 0),
           "unpublished" = "unpublished" + (NEW."is_moderated" = 0)
     WHERE "owner_id" IN (-1, coalesce(NEW."owner_id", 0));
END;

DROP TRIGGER IF EXISTS "unchained_product_deleted";
CREATE TRIGGER "unchained_product_deleted" AFTER DELETE ON "catalog_product"
BEGIN
    UPDATE "unchained_product_count"
       SET "published" = "published" - (OLD."is_moderated" != 0),
           "unpublished" = "unpublished" - (OLD."is_moderated" = 0)
     WHERE "owner_id" IN (-1, coalesce(OLD."owner_id", 0));
END;

DROP TRIGGER IF EXISTS "unchained_product_moved";
CREATE TRIGGER "unchained_product_moved" AFTER UPDATE OF "owner_id", "is_moderated" ON "catalog_product"
WHEN OLD."owner_id" IS NOT NEW."owner_id" OR OLD."is_moderated" IS NOT NEW."is_moderated"
BEGIN
    UPDATE "unchained_product_count"
       SET "published" = "published" - (OLD."is_moderated" != 0),
           "unpublished" = "unpublished" - (OLD."is_moderated" = 0)
     WHERE "owner_id" IN (-1, coalesce(OLD."owner_id", 0));
    INSERT OR IGNORE INTO "unchained_product_count" VALUES (coalesce(NEW."owner_id", 0), 0, 0);
    UPDATE "unchained_product_count"
       SET "published" = "published" + (NEW."is_moderated" != 0),
           "unpublished" = "unpublished" + (NEW."is_moderated" = 0)
     WHERE "owner_id" IN (-1, coalesce(NEW."owner_id", 0));
END;

DELETE FROM "unchained_product_count";
INSERT INTO "unchained_product_count" ("owner_id", "published", "unpublished")
    SELECT -1, coalesce(sum("is_moderated" != 0), 0), coalesce(sum("is_moderated" = 0), 0) FROM "catalog_product"
    UNION ALL
    SELECT coalesce("owner_id", 0), sum("is_moderated" != 0), sum("is_moderated" = 0) FROM "catalog_product"
     GROUP BY coalesce("owner_id", 0);
