"""Response cache: provider answers keyed by the sha256 of the exact request.

Revision ID: 3c874a6c744f
Revises: efd7f880d568
Create Date: 2026-11-21 14:53:59.967057

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = '3c874a6c744f'
down_revision = 'efd7f880d568'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('response_cache_entries',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('provider', sa.String(length=16), nullable=False),
    sa.Column('model', sa.String(length=64), nullable=False),
    sa.Column('prompt_version', sa.String(length=32), nullable=False),
    sa.Column('schema_version', sa.String(length=16), nullable=False),
    sa.Column('arguments', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('problem', sa.String(length=32), nullable=True),
    sa.Column('raw', sa.Text(), nullable=False),
    sa.Column('input_tokens', sa.Integer(), nullable=False),
    sa.Column('cache_read_tokens', sa.Integer(), nullable=False),
    sa.Column('cache_write_tokens', sa.Integer(), nullable=False),
    sa.Column('output_tokens', sa.Integer(), nullable=False),
    sa.Column('reasoning_tokens', sa.Integer(), nullable=False),
    sa.Column('cost_usd', sa.Numeric(precision=28, scale=10), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_response_cache_entries'))
    )


def downgrade():
    op.drop_table('response_cache_entries')
