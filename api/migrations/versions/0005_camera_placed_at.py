"""camera placed_at: an admin's placement is not overwritten by the edge's events

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 03:10:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('camera', schema=None) as batch_op:
        batch_op.add_column(sa.Column('placed_at', sa.DateTime(), nullable=True))
    # Cameras placed before this revision cannot be told from those only the edge reported;
    # one with ground points was certainly placed through the API.
    op.execute("UPDATE camera SET placed_at = last_seen WHERE ground_points IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table('camera', schema=None) as batch_op:
        batch_op.drop_column('placed_at')
