"""edge_box.states_digest: the digest of the camera states a box last reported in full

A heartbeat with the same digest changed nothing, and is written with one UPDATE
(api/heartbeats.py explains the invariant that makes this safe). NULL: take the full path.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 22:20:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('edge_box', sa.Column('states_digest', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))


def downgrade() -> None:
    op.drop_column('edge_box', 'states_digest')
