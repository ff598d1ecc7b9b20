"""The tables the product keeps about itself: users, apps and their versions."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from .sqltypes import UtcDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

system_metadata = MetaData(naming_convention=NAMING_CONVENTION)

users = Table(
    "crm_users",
    system_metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("username", String(150), nullable=False, unique=True),
    Column("display_name", String(200)),
    Column("email", String(255)),
    Column("password_hash", String(255)),
    Column("roles", JSON, nullable=False, default=list),
    Column("manager_id", BigInteger, ForeignKey("crm_users.id")),
    Column("language", String(10)),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", UtcDateTime, nullable=False),
)

apps = Table(
    "crm_apps",
    system_metadata,
    Column("name", String(30), primary_key=True),
    Column("current_seq", Integer, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

app_versions = Table(
    "crm_app_versions",
    system_metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("app", String(30), ForeignKey("crm_apps.name"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("version", String(50), nullable=False),
    Column("document", JSON, nullable=False),
    Column("digest", String(64), nullable=False),
    # Entities and fields removed from the document whose data is kept.
    Column("archived", JSON, nullable=False),
    Column("plan", JSON, nullable=False),
    Column("action", String(20), nullable=False),
    Column("author", String(150)),
    Column("created_at", UtcDateTime, nullable=False),
    Column("comment", Text),
    UniqueConstraint("app", "seq"),
)

# One row whose generation grows with every publish: the cheap check each
# request makes to learn whether its cached metadata is still current.
meta_state = Table(
    "crm_meta_state",
    system_metadata,
    Column("id", Integer, primary_key=True),
    Column("generation", BigInteger, nullable=False),
)

# Field-level history of every record: who, when, what changed (before/after).
audit_log = Table(
    "crm_audit",
    system_metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("app", String(30), nullable=False),
    Column("entity", String(30), nullable=False),
    Column("record_id", BigInteger, nullable=False),
    Column("action", String(20), nullable=False),
    Column("actor_id", BigInteger),
    Column("on_behalf_of", BigInteger),
    Column("at", UtcDateTime, nullable=False),
    Column("changes", JSON, nullable=False),
    Column("comment", Text),
    Index("ix_crm_audit_record", "app", "entity", "record_id", "id"),
)

# Autonumber counters; a key per rendered prefix, so a yearly pattern restarts each year.
sequences = Table(
    "crm_sequences",
    system_metadata,
    Column("key", String(200), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

files = Table(
    "crm_files",
    system_metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("app", String(30)),
    Column("entity", String(30)),
    Column("field", String(30)),
    Column("record_id", BigInteger),
    Column("name", String(255), nullable=False),
    Column("mime", String(100), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("path", String(255), nullable=False),
    Column("created_by", BigInteger),
    Column("created_at", UtcDateTime, nullable=False),
    Index("ix_crm_files_record", "app", "entity", "record_id"),
)

api_tokens = Table(
    "crm_api_tokens",
    system_metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("user_id", BigInteger, ForeignKey("crm_users.id"), nullable=False),
    # Only a hash is kept: a stolen database does not hand out working tokens.
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("label", String(100)),
    Column("created_at", UtcDateTime, nullable=False),
    Column("last_used_at", UtcDateTime),
    Column("revoked_at", UtcDateTime),
)
