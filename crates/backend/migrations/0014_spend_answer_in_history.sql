-- A spend's 200 answer (the snapshot it made) kept in its history row, written by the same statement: a retry
-- of the key reads it there, and a successful spend costs no second insert. Refusals (409) stay in
-- inventory_spends, since a refused spend makes no history row.
ALTER TABLE inventory_changes ADD COLUMN answer TEXT;
