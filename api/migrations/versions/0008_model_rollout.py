"""model rollout: pushed model versions, their files, and which boxes are to run which

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 12:10:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('model_version',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('version', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('weights', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('manifest', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('classes', sa.JSON(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('pushed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('pushed_by', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('ready_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name', 'version', name='uq_model_version_name_version')
    )
    op.create_table('model_file',
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('path', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('stored_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['version_id'], ['model_version.id'], ),
    sa.PrimaryKeyConstraint('version_id', 'path')
    )
    op.create_table('model_assignment',
    sa.Column('target', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('assigned_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('assigned_by', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.ForeignKeyConstraint(['version_id'], ['model_version.id'], ),
    sa.PrimaryKeyConstraint('target')
    )
    op.create_index(op.f('ix_model_assignment_version_id'), 'model_assignment', ['version_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_model_assignment_version_id'), table_name='model_assignment')
    op.drop_table('model_assignment')
    op.drop_table('model_file')
    op.drop_table('model_version')
