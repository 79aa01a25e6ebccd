-- The offer (SKU) behind a grant or revocation, so the game's history can say which reward it was.
ALTER TABLE inventory_changes ADD COLUMN sku TEXT;
