"""The database layer: tables, engine, sessions, migrations. It imports no business module."""
