"""Market catalogs: an exchange's markets as ccxt loaded them, with the time they were fetched.

Revision ID: 1209f8a05d3c
Revises: 76f60eb93501
Create Date: 2026-11-30 23:37:00.793249

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = '1209f8a05d3c'
down_revision = '76f60eb93501'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('market_catalogs',
    sa.Column('exchange_id', sa.String(length=32), nullable=False),
    sa.Column('fetched_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('market_count', sa.Integer(), nullable=False),
    sa.Column('markets', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.PrimaryKeyConstraint('exchange_id', name=op.f('pk_market_catalogs'))
    )


def downgrade():
    op.drop_table('market_catalogs')
