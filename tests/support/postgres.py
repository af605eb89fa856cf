"""Tests use the same throwaway cluster as the benchmark (api/local_postgres.py)."""

from api.local_postgres import ThrowawayPostgres, pg_bin

__all__ = ["ThrowawayPostgres", "pg_bin"]
