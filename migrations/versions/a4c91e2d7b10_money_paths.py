"""Money paths: an account's exchange base URL and clock; dust, exit attempts and unvalued fees on positions; each
trade's fee valued in the quote currency.

Revision ID: a4c91e2d7b10
Revises: e89274427969
Create Date: 2026-12-01 02:20:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'a4c91e2d7b10'
down_revision = 'e89274427969'
branch_labels = None
depends_on = None

AMOUNT = sa.Numeric(precision=28, scale=10)


def upgrade():
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('exchange_base_url', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('last_bar_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('positions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('fees_unvalued', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('dust_quantity', AMOUNT, nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('dust_value', AMOUNT, nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('exit_attempts', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('exit_error_code', sa.String(length=48), nullable=True))
        batch_op.add_column(sa.Column('exit_error_message', sa.Text(), nullable=True))
    with op.batch_alter_table('trades', schema=None) as batch_op:
        batch_op.add_column(sa.Column('fee_value', AMOUNT, nullable=True))
    # Fees recorded so far were already valued in the quote currency and labelled with it.
    op.execute("UPDATE trades SET fee_value = fee")


def downgrade():
    with op.batch_alter_table('trades', schema=None) as batch_op:
        batch_op.drop_column('fee_value')
    with op.batch_alter_table('positions', schema=None) as batch_op:
        for column in ('exit_error_message', 'exit_error_code', 'exit_attempts', 'dust_value', 'dust_quantity',
                       'fees_unvalued'):
            batch_op.drop_column(column)
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_column('last_bar_at')
        batch_op.drop_column('exchange_base_url')
