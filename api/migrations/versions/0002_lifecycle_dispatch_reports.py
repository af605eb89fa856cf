"""lifecycle, dispatch, reports, audit, keys

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24

The closed loop (audit log, dispatch to grid workers, SLAs, camera verification), citizen
reports and API keys. The audit log is append-only: triggers refuse UPDATE and DELETE.
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('grid',
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('polygon', sa.JSON(), nullable=True),
    sa.Column('cameras', sa.JSON(), nullable=False),
    sa.Column('supervisor', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('worker',
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('phone', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('grid_ids', sa.JSON(), nullable=False),
    sa.Column('lat', sa.Float(), nullable=True),
    sa.Column('lon', sa.Float(), nullable=True),
    sa.Column('on_duty', sa.Boolean(), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('api_key',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('role', sa.Enum('edge', 'reviewer', 'worker', 'admin', name='role', native_enum=False, length=32), nullable=False),
    sa.Column('key_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('worker_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('revoked_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['worker_id'], ['worker.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key_hash')
    )
    op.create_table('audit_entry',
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('action', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('from_state', sa.Enum('reported', 'dispatched', 'in_progress', 'resolved', 'closed', 'rejected', 'reopened', name='orderstate', native_enum=False, length=32), nullable=True),
    sa.Column('to_state', sa.Enum('reported', 'dispatched', 'in_progress', 'resolved', 'closed', 'rejected', 'reopened', name='orderstate', native_enum=False, length=32), nullable=True),
    sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('role', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('note', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['order.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('audit_entry', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_entry_order_id'), ['order_id'], unique=False)

    op.create_table('notification',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('worker_id', sa.Integer(), nullable=True),
    sa.Column('supervisor', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('message', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['order.id'], ),
    sa.ForeignKeyConstraint(['worker_id'], ['worker.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notification_order_id'), ['order_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_notification_worker_id'), ['worker_id'], unique=False)

    op.create_table('report',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tracking_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('issue_type', sa.Enum('street_vending', 'clutter', 'flooding', name='issuetype', native_enum=False, length=32), nullable=False),
    sa.Column('lat', sa.Float(), nullable=False),
    sa.Column('lon', sa.Float(), nullable=False),
    sa.Column('text', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('contact', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['order.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('report', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_report_order_id'), ['order_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_report_tracking_id'), ['tracking_id'], unique=True)

    _append_only('audit_entry')

    with op.batch_alter_table('camera', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ground_points', sa.JSON(), nullable=True))

    with op.batch_alter_table('event', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lat', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('lon', sa.Float(), nullable=True))

    with op.batch_alter_table('evidence', schema=None) as batch_op:
        batch_op.add_column(sa.Column('report_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('audit_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_evidence_report_id', 'report', ['report_id'], ['id'])
        batch_op.create_foreign_key('fk_evidence_audit_id', 'audit_entry', ['audit_id'], ['id'])

    with op.batch_alter_table('order', schema=None) as batch_op:
        batch_op.add_column(sa.Column('source', sa.Enum('camera', 'citizen', name='ordersource', native_enum=False, length=32), nullable=False, server_default='camera'))
        batch_op.add_column(sa.Column('lat', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('lon', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('grid_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True))
        batch_op.add_column(sa.Column('worker_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('unassigned', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('recurrence_of', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('sla_due_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('escalated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('dispatched_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('resolved_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('closed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('cleared_by_camera', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('cleared_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('verified_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('reject_reason', sa.Enum('not_an_issue', 'wrong_type', 'duplicate', 'permitted', 'outside_jurisdiction', 'other', name='rejectreason', native_enum=False, length=32), nullable=True))
        batch_op.add_column(sa.Column('rating', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('evaluation', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.alter_column('model_name',
               existing_type=sa.VARCHAR(),
               nullable=True)
        batch_op.alter_column('model_version',
               existing_type=sa.VARCHAR(),
               nullable=True)
        batch_op.alter_column('x1',
               existing_type=sa.FLOAT(),
               nullable=True)
        batch_op.alter_column('y1',
               existing_type=sa.FLOAT(),
               nullable=True)
        batch_op.alter_column('x2',
               existing_type=sa.FLOAT(),
               nullable=True)
        batch_op.alter_column('y2',
               existing_type=sa.FLOAT(),
               nullable=True)
        batch_op.alter_column('frame_width',
               existing_type=sa.INTEGER(),
               nullable=True)
        batch_op.alter_column('frame_height',
               existing_type=sa.INTEGER(),
               nullable=True)
        batch_op.alter_column('camera_id',
               existing_type=sa.INTEGER(),
               nullable=True)
        batch_op.create_index(batch_op.f('ix_order_grid_id'), ['grid_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_order_worker_id'), ['worker_id'], unique=False)
        batch_op.create_foreign_key('fk_order_worker_id', 'worker', ['worker_id'], ['id'])
        batch_op.create_foreign_key('fk_order_recurrence_of', 'order', ['recurrence_of'], ['id'])




def _append_only(table: str) -> None:
    # The audit log is evidence in disputes between the city and its contractors: the
    # database itself refuses to change or delete a row, whatever code or person asks.
    message = f"{table} is append-only"
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"""CREATE FUNCTION {table}_append_only() RETURNS trigger AS $$
            BEGIN RAISE EXCEPTION '{message}'; END; $$ LANGUAGE plpgsql""")
        op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                   f"FOR EACH ROW EXECUTE FUNCTION {table}_append_only()")
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                       f"BEGIN SELECT RAISE(ABORT, '{message}'); END")


def downgrade() -> None:
    with op.batch_alter_table('order', schema=None) as batch_op:
        batch_op.drop_constraint('fk_order_recurrence_of', type_='foreignkey')
        batch_op.drop_constraint('fk_order_worker_id', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_order_worker_id'))
        batch_op.drop_index(batch_op.f('ix_order_grid_id'))
        batch_op.alter_column('camera_id',
               existing_type=sa.INTEGER(),
               nullable=False)
        batch_op.alter_column('frame_height',
               existing_type=sa.INTEGER(),
               nullable=False)
        batch_op.alter_column('frame_width',
               existing_type=sa.INTEGER(),
               nullable=False)
        batch_op.alter_column('y2',
               existing_type=sa.FLOAT(),
               nullable=False)
        batch_op.alter_column('x2',
               existing_type=sa.FLOAT(),
               nullable=False)
        batch_op.alter_column('y1',
               existing_type=sa.FLOAT(),
               nullable=False)
        batch_op.alter_column('x1',
               existing_type=sa.FLOAT(),
               nullable=False)
        batch_op.alter_column('model_version',
               existing_type=sa.VARCHAR(),
               nullable=False)
        batch_op.alter_column('model_name',
               existing_type=sa.VARCHAR(),
               nullable=False)
        batch_op.drop_column('evaluation')
        batch_op.drop_column('rating')
        batch_op.drop_column('reject_reason')
        batch_op.drop_column('verified_at')
        batch_op.drop_column('cleared_at')
        batch_op.drop_column('cleared_by_camera')
        batch_op.drop_column('closed_at')
        batch_op.drop_column('resolved_at')
        batch_op.drop_column('dispatched_at')
        batch_op.drop_column('escalated_at')
        batch_op.drop_column('sla_due_at')
        batch_op.drop_column('recurrence_of')
        batch_op.drop_column('unassigned')
        batch_op.drop_column('worker_id')
        batch_op.drop_column('grid_id')
        batch_op.drop_column('lon')
        batch_op.drop_column('lat')
        batch_op.drop_column('source')

    with op.batch_alter_table('evidence', schema=None) as batch_op:
        batch_op.drop_constraint('fk_evidence_audit_id', type_='foreignkey')
        batch_op.drop_constraint('fk_evidence_report_id', type_='foreignkey')
        batch_op.drop_column('audit_id')
        batch_op.drop_column('report_id')

    with op.batch_alter_table('event', schema=None) as batch_op:
        batch_op.drop_column('lon')
        batch_op.drop_column('lat')

    with op.batch_alter_table('camera', schema=None) as batch_op:
        batch_op.drop_column('ground_points')

    with op.batch_alter_table('report', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_report_tracking_id'))
        batch_op.drop_index(batch_op.f('ix_report_order_id'))

    op.drop_table('report')
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notification_worker_id'))
        batch_op.drop_index(batch_op.f('ix_notification_order_id'))

    op.drop_table('notification')
    with op.batch_alter_table('audit_entry', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_entry_order_id'))

    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_entry_append_only ON audit_entry")
        op.execute("DROP FUNCTION audit_entry_append_only()")
    op.drop_table('audit_entry')
    op.drop_table('api_key')
    op.drop_table('worker')
    op.drop_table('grid')

