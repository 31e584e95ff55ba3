//! alembic-policy
