//! alembic-render
