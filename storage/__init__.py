"""Postgres access: the pool, the migration runner and one module per aggregate. SQL lives here only."""
