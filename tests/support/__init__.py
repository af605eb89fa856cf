"""Real servers for tests: PostgreSQL (ThrowawayPostgres) and S3 (LocalS3Server)."""
