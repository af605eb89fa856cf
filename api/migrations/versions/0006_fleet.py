"""fleet: edge boxes, camera health and its history, edge keys bound to a box, the sweep lease

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 09:00:00

Notifications may now be about a camera or a box instead of an order (a blind camera tells
the grid's supervisor), so their order_id becomes optional.
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

STATES = ('streaming', 'reconnecting', 'stalled', 'failed', 'disabled', 'offline')


def _state() -> sa.Enum:
    return sa.Enum(*STATES, name='camerahealthstate', native_enum=False, length=32)


def upgrade() -> None:
    op.create_table('edge_box',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('last_heartbeat_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('heartbeat_interval_s', sa.Float(), nullable=True),
    sa.Column('software_version', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('model_name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('model_version', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('model_sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('model_error', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('outbox_depth', sa.Integer(), nullable=False),
    sa.Column('live', sa.JSON(), nullable=False),
    sa.Column('offline_since', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('offline_alert_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('camera_status',
    sa.Column('camera_id', sa.Integer(), nullable=False),
    sa.Column('box_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('state', _state(), nullable=False),
    sa.Column('state_since', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('down_since', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('offline_alert_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['camera_id'], ['camera.id'], ),
    sa.ForeignKeyConstraint(['box_id'], ['edge_box.id'], ),
    sa.PrimaryKeyConstraint('camera_id')
    )
    with op.batch_alter_table('camera_status', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_camera_status_box_id'), ['box_id'], unique=False)

    op.create_table('camera_state_change',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('camera_id', sa.Integer(), nullable=False),
    sa.Column('box_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('from_state', _state(), nullable=True),
    sa.Column('to_state', _state(), nullable=False),
    sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['camera_id'], ['camera.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('camera_state_change', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_camera_state_change_camera_id'), ['camera_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_camera_state_change_at'), ['at'], unique=False)

    op.create_table('sweep_lease',
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
    sa.Column('holder', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('expires_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('rounds', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )

    with op.batch_alter_table('api_key', schema=None) as batch_op:
        batch_op.add_column(sa.Column('box_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True))

    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.add_column(sa.Column('camera', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True))
        batch_op.add_column(sa.Column('box_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True))
        batch_op.alter_column('order_id', existing_type=sa.Integer(), nullable=True)


def downgrade() -> None:
    # Notifications about cameras and boxes have no order: they cannot survive the way back.
    op.execute("DELETE FROM notification WHERE order_id IS NULL")
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.alter_column('order_id', existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column('box_id')
        batch_op.drop_column('camera')
    with op.batch_alter_table('api_key', schema=None) as batch_op:
        batch_op.drop_column('box_id')
    op.drop_table('sweep_lease')
    with op.batch_alter_table('camera_state_change', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_camera_state_change_at'))
        batch_op.drop_index(batch_op.f('ix_camera_state_change_camera_id'))
    op.drop_table('camera_state_change')
    with op.batch_alter_table('camera_status', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_camera_status_box_id'))
    op.drop_table('camera_status')
    op.drop_table('edge_box')
