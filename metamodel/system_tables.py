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

# Failed sign-ins, kept per username: repeated failures lock the account for a while.
# A row per failure (not a counter on the user) so workers never race on one row.
sign_in_failures = Table(
    "crm_sign_in_failures",
    system_metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("username", String(150), nullable=False),
    Column("remote_addr", String(64)),
    Column("at", UtcDateTime, nullable=False),
    Index("ix_crm_sign_in_failures_user", "username", "at"),
)

# Submissions of public forms, a row per attempt and address: the rate limit counts
# them in the database, so it holds across workers. Rows past the window are pruned.
public_submissions = Table(
    "crm_public_submissions",
    system_metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("form", String(100), nullable=False),
    Column("remote_addr", String(64), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Index("ix_crm_public_submissions_addr", "remote_addr", "form", "at"),
)

# --- workflow approvals (owned by workflow_engine) ------------------------------

# One row per approval a transition opened. ``definition`` is the workflow as it was
# published when the approval started: a running approval keeps that version.
approvals = Table(
    "crm_approvals",
    system_metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("app", String(30), nullable=False),
    Column("entity", String(30), nullable=False),
    Column("record_id", BigInteger, nullable=False),
    Column("workflow", String(30), nullable=False),
    Column("transition", String(30), nullable=False),
    Column("definition", JSON, nullable=False),
    Column("from_state", String(30)),
    Column("to_state", String(30), nullable=False),
    Column("pending_state", String(30)),
    Column("submitter_id", BigInteger),
    Column("status", String(20), nullable=False),
    Column("step_index", Integer, nullable=False),
    # Bumped each time a step is entered (again): the tasks of the current attempt.
    Column("round", Integer, nullable=False),
    # Optimistic lock: every change of the row checks and bumps it.
    Column("version", Integer, nullable=False),
    Column("comment", Text),
    Column("started_at", UtcDateTime, nullable=False),
    Column("closed_at", UtcDateTime),
    Index("ix_crm_approvals_submitter", "submitter_id", "status"),
)

# At most one open approval per record, whatever the application code does.
Index(
    "uq_crm_approvals_open_record",
    approvals.c.app,
    approvals.c.entity,
    approvals.c.record_id,
    unique=True,
    sqlite_where=approvals.c.status == "open",
    postgresql_where=approvals.c.status == "open",
)

# A person's part in an approval: a decision to take (kind approve) or a copy (cc).
approval_tasks = Table(
    "crm_approval_tasks",
    system_metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("approval_id", BigInteger, ForeignKey("crm_approvals.id"), nullable=False),
    Column("step_index", Integer, nullable=False),
    Column("step_name", String(30), nullable=False),
    Column("round", Integer, nullable=False),
    # Tasks that stand for the same approver (a transfer, say) share a seat.
    Column("seat", BigInteger),
    # Position in a chain of managers (逐级审批); later levels wait for earlier ones.
    Column("level", Integer, nullable=False, default=0),
    Column("kind", String(10), nullable=False),
    Column("source", String(20), nullable=False),
    Column("assignee_id", BigInteger, nullable=False),
    Column("on_behalf_of", BigInteger),
    Column("status", String(20), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("acted_at", UtcDateTime),
    Column("acted_by", BigInteger),
    Column("comment", Text),
    Column("due_at", UtcDateTime),
    Column("escalated_at", UtcDateTime),
    Index("ix_crm_approval_tasks_approval", "approval_id", "round"),
    Index("ix_crm_approval_tasks_assignee", "assignee_id", "kind", "status"),
    Index("ix_crm_approval_tasks_due", "status", "due_at"),
)

# "While I am away, my approvals go to ..." for a period.
delegations = Table(
    "crm_delegations",
    system_metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("user_id", BigInteger, ForeignKey("crm_users.id"), nullable=False),
    Column("delegate_id", BigInteger, ForeignKey("crm_users.id"), nullable=False),
    Column("starts_at", UtcDateTime, nullable=False),
    Column("ends_at", UtcDateTime, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Index("ix_crm_delegations_user", "user_id", "starts_at"),
)

notifications = Table(
    "crm_notifications",
    system_metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("user_id", BigInteger, nullable=False),
    Column("kind", String(20), nullable=False),
    Column("app", String(30)),
    Column("entity", String(30)),
    Column("record_id", BigInteger),
    Column("approval_id", BigInteger),
    Column("message", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("read_at", UtcDateTime),
    # ``message``'s template and values (metamodel.messages): a page shows it in the
    # reader's language. Added after release: older rows have none, and say ``message``.
    Column("message_parts", JSON),
    Index("ix_crm_notifications_user", "user_id", "read_at"),
)

# --- presets (owned by presets) ---------------------------------------------------

# Each preset import or upgrade: the preset as shipped (without its sample data) is the
# common ancestor the next upgrade merges against; ``sample_records`` (entity → count,
# or null) says whether its sample data went in, so importing again adds none twice.
preset_imports = Table(
    "crm_preset_imports",
    system_metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("app", String(30), nullable=False),
    # The app version the import published; null when it only added sample data.
    Column("seq", Integer),
    Column("version", String(50), nullable=False),
    Column("document", JSON, nullable=False),
    Column("sample_records", JSON),
    Column("author", String(150)),
    Column("created_at", UtcDateTime, nullable=False),
    Index("ix_crm_preset_imports_app", "app", "id"),
)

# --- import jobs (owned by records/import_jobs.py) ---------------------------------

# A CSV or XLSX file imported in the background: its state is here, not in a worker,
# so any worker answers for it. ``errors`` holds the first problems, each with a
# JSON Pointer /rows/<line>/<column>; ``error_count`` counts them all.
import_jobs = Table(
    "crm_import_jobs",
    system_metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("app", String(30), nullable=False),
    Column("entity", String(30), nullable=False),
    Column("file_name", String(255), nullable=False),
    Column("format", String(10), nullable=False),
    Column("status", String(20), nullable=False),
    Column("skip_invalid", Boolean, nullable=False),
    Column("rows_read", BigInteger, nullable=False),
    Column("rows_imported", BigInteger, nullable=False),
    Column("rows_rejected", BigInteger, nullable=False),
    Column("error_count", BigInteger, nullable=False),
    Column("errors", JSON, nullable=False),
    Column("message", Text),
    Column("file_path", String(1000)),
    Column("rejects_path", String(1000)),
    Column("created_by", BigInteger),
    Column("created_at", UtcDateTime, nullable=False),
    Column("started_at", UtcDateTime),
    # Last word from the worker running it: a running job silent for long is stale.
    Column("heartbeat_at", UtcDateTime),
    Column("finished_at", UtcDateTime),
    Index("ix_crm_import_jobs_creator", "created_by", "id"),
)

# --- dashboard snapshots (owned by records/dashboard_snapshots.py) -------------------

# A dashboard widget's computed data, per audience: "all" for everyone who reads every
# entity the widget reads in full, else one user with their rights (see audience()).
# Workers share the snapshots through the database. ``digest`` is the app document's
# at computing time: a snapshot of other metadata is void. Labels are kept as written
# (every language), so one snapshot serves every language.
dashboard_snapshots = Table(
    "crm_dashboard_snapshots",
    system_metadata,
    Column("app", String(30), primary_key=True),
    Column("dashboard", String(30), primary_key=True),
    Column("widget", Integer, primary_key=True),
    Column("audience", String(64), primary_key=True),
    Column("data", JSON, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("computed_at", UtcDateTime, nullable=False),
)
