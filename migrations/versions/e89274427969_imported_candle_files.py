"""Imported candle files: each bundled candle file's sha256 as imported, so an unchanged file is not read again.

Revision ID: e89274427969
Revises: 1209f8a05d3c
Create Date: 2026-11-30 23:56:27.635314

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'e89274427969'
down_revision = '1209f8a05d3c'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('imported_candle_files',
    sa.Column('file_name', sa.String(length=255), nullable=False),
    sa.Column('exchange_id', sa.String(length=32), nullable=False),
    sa.Column('symbol', sa.String(length=32), nullable=False),
    sa.Column('timeframe', sa.String(length=8), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('row_count', sa.Integer(), nullable=False),
    sa.Column('first_open_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_open_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('imported_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('file_name', 'exchange_id', 'symbol', 'timeframe', name=op.f('pk_imported_candle_files'))
    )


def downgrade():
    op.drop_table('imported_candle_files')
