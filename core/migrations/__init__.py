"""Ordered SQL migrations, applied by `glucobridge db upgrade` (see core.db)."""
