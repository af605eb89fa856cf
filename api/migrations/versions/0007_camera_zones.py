"""camera_zones: zones and masks edited centrally, pulled by each camera's box

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 12:00:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('camera_zones',
    sa.Column('camera_id', sa.Integer(), nullable=False),
    sa.Column('frame_width', sa.Integer(), nullable=False),
    sa.Column('frame_height', sa.Integer(), nullable=False),
    sa.Column('zones', sa.JSON(), nullable=False),
    sa.Column('masks', sa.JSON(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('updated_by', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.ForeignKeyConstraint(['camera_id'], ['camera.id'], ),
    sa.PrimaryKeyConstraint('camera_id')
    )


def downgrade() -> None:
    op.drop_table('camera_zones')
