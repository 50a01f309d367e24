"""Positions keep their cost basis (quote spent, buy fees included) for realized PnL.

Revision ID: 765b405d747c
Revises: 3c874a6c744f
Create Date: 2026-11-21 15:14:55.380788

"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '765b405d747c'
down_revision = '3c874a6c744f'
branch_labels = None
depends_on = None

def upgrade():
    with op.batch_alter_table('positions', schema=None) as batch_op:
        # Existing rows predate cost tracking: 0 until their next fill.
        batch_op.add_column(
            sa.Column('cost_basis', sa.Numeric(precision=28, scale=10), nullable=False, server_default='0')
        )


def downgrade():
    with op.batch_alter_table('positions', schema=None) as batch_op:
        batch_op.drop_column('cost_basis')

