-- The caller's Hume API key, sealed (XChaCha20-Poly1305, see src/sealed.rs), kept only while the
-- job has not ended: the `hume` backend's workers call Hume v1 with it, also after a restart.
ALTER TABLE jobs ADD COLUMN api_key_sealed TEXT;
