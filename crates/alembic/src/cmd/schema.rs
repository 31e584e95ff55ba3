//! `alembic schema`: the JSON Schema of alembic.toml on stdout.

pub fn run() -> i32 {
    print!("{}", alembic_config::schema::schema_json());
    crate::exit::OK
}
