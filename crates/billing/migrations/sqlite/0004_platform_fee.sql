-- A plan may charge a per-minute platform fee on every session (a `platform` usage line).
ALTER TABLE plans ADD COLUMN platform_fee_micros_per_minute INTEGER NOT NULL DEFAULT 0;
