-- 0012 pages: each user's language and glucose unit, chosen at sign-in or on any page and
-- used by every page and export (NULL: not chosen yet; the browser's language decides).
ALTER TABLE users
    ADD COLUMN language text CHECK (language IN ('en', 'zh-CN')),
    ADD COLUMN unit text CHECK (unit IN ('mg/dL', 'mmol/L'));
