"""Backtest journals: an AI backtest's answers by bar, replayed by identical re-runs.

Revision ID: 76f60eb93501
Revises: 765b405d747c
Create Date: 2026-11-21 15:51:02.409900

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = '76f60eb93501'
down_revision = '765b405d747c'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('backtest_journals',
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('provider', sa.String(length=16), nullable=False),
    sa.Column('model', sa.String(length=64), nullable=False),
    sa.Column('decisions', sa.Integer(), nullable=False),
    sa.Column('answers', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('original_cost_usd', sa.Numeric(precision=28, scale=10), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('fingerprint', name=op.f('pk_backtest_journals'))
    )


def downgrade():
    op.drop_table('backtest_journals')
