"""Data model v1: users, keys, credentials, accounts, watches, candles, analyses, decisions, orders,
positions, trades, backtests, budget ledger, audit events.

Revision ID: efd7f880d568
Revises:
Create Date: 2026-11-21 14:41:30.725657

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = 'efd7f880d568'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('candles',
    sa.Column('exchange_id', sa.String(length=32), nullable=False),
    sa.Column('symbol', sa.String(length=32), nullable=False),
    sa.Column('timeframe', sa.String(length=8), nullable=False),
    sa.Column('open_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('open', sa.Numeric(precision=28, scale=10), nullable=False),
    sa.Column('high', sa.Numeric(precision=28, scale=10), nullable=False),
    sa.Column('low', sa.Numeric(precision=28, scale=10), nullable=False),
    sa.Column('close', sa.Numeric(precision=28, scale=10), nullable=False),
    sa.Column('volume', sa.Numeric(precision=28, scale=10), nullable=False),
    sa.CheckConstraint('high >= low', name=op.f('ck_candles_high_not_below_low')),
    sa.CheckConstraint('volume >= 0', name=op.f('ck_candles_volume_not_negative')),
    sa.PrimaryKeyConstraint('exchange_id', 'symbol', 'timeframe', 'open_time', name=op.f('pk_candles'))
    )
    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('display_name', sa.String(length=80), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('daily_budget_usd', sa.Numeric(precision=28, scale=10), nullable=False),
    sa.Column('monthly_budget_usd', sa.Numeric(precision=28, scale=10), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('email', name=op.f('uq_users_email'))
    )
    op.create_table('api_keys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('scopes', sa.String(length=80), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_api_keys_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_keys')),
    sa.UniqueConstraint('key_hash', name=op.f('uq_api_keys_key_hash')),
    sa.UniqueConstraint('prefix', name=op.f('uq_api_keys_prefix'))
    )
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_keys_user_id'), ['user_id'], unique=False)

    op.create_table('backtests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('exchange_id', sa.String(length=32), nullable=False),
    sa.Column('symbol', sa.String(length=32), nullable=False),
    sa.Column('timeframe', sa.String(length=8), nullable=False),
    sa.Column('signal_source', sa.String(length=80), nullable=False),
    sa.Column('signal_params', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('settings', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('window_start', sa.DateTime(timezone=True), nullable=True),
    sa.Column('window_end', sa.DateTime(timezone=True), nullable=True),
    sa.Column('status', sa.Enum('queued', 'running', 'succeeded', 'failed', name='backteststatus', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('progress', sa.Double(), nullable=False),
    sa.Column('metrics', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('baselines', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('ai_cost_usd', sa.Numeric(precision=28, scale=10), nullable=False),
    sa.Column('ai_cache_hits', sa.Integer(), nullable=False),
    sa.Column('ai_cache_misses', sa.Integer(), nullable=False),
    sa.Column('error_message', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint('progress >= 0 AND progress <= 1', name=op.f('ck_backtests_progress_fraction')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_backtests_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_backtests'))
    )
    with op.batch_alter_table('backtests', schema=None) as batch_op:
        batch_op.create_index('ix_backtests_user_created', ['user_id', 'created_at'], unique=False)

    op.create_table('exchange_credentials',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('exchange_id', sa.String(length=32), nullable=False),
    sa.Column('label', sa.String(length=80), nullable=False),
    sa.Column('api_key_encrypted', sa.Text(), nullable=False),
    sa.Column('api_secret_encrypted', sa.Text(), nullable=False),
    sa.Column('passphrase_encrypted', sa.Text(), nullable=True),
    sa.Column('api_key_hint', sa.String(length=24), nullable=False),
    sa.Column('sandbox', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_exchange_credentials_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_exchange_credentials')),
    sa.UniqueConstraint('user_id', 'label', name=op.f('uq_exchange_credentials_user_id_label'))
    )
    with op.batch_alter_table('exchange_credentials', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_exchange_credentials_user_id'), ['user_id'], unique=False)

    op.create_table('llm_credentials',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('provider', sa.String(length=16), nullable=False),
    sa.Column('api_key_encrypted', sa.Text(), nullable=False),
    sa.Column('api_key_hint', sa.String(length=24), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_llm_credentials_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_llm_credentials')),
    sa.UniqueConstraint('user_id', 'provider', name=op.f('uq_llm_credentials_user_id_provider'))
    )
    with op.batch_alter_table('llm_credentials', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_llm_credentials_user_id'), ['user_id'], unique=False)

    op.create_table('accounts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('kind', sa.Enum('paper', 'live', name='accountkind', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('exchange_id', sa.String(length=32), nullable=False),
    sa.Column('credential_id', sa.Integer(), nullable=True),
    sa.Column('quote_currency', sa.String(length=12), nullable=False),
    sa.Column('starting_balance', sa.Numeric(precision=28, scale=10), nullable=False),
    sa.Column('current_balance', sa.Numeric(precision=28, scale=10), nullable=False),
    sa.Column('peak_equity', sa.Numeric(precision=28, scale=10), nullable=False),
    sa.Column('trading_state', sa.Enum('ACTIVE', 'REDUCING', 'HALTED', name='tradingstate', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('risk_settings', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind = 'paper' OR credential_id IS NOT NULL", name=op.f('ck_accounts_live_needs_credential')),
    sa.CheckConstraint('current_balance >= 0', name=op.f('ck_accounts_current_balance_not_negative')),
    sa.CheckConstraint('starting_balance >= 0', name=op.f('ck_accounts_starting_balance_not_negative')),
    sa.ForeignKeyConstraint(['credential_id'], ['exchange_credentials.id'], name=op.f('fk_accounts_credential_id_exchange_credentials'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_accounts_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_accounts')),
    sa.UniqueConstraint('user_id', 'name', name=op.f('uq_accounts_user_id_name'))
    )
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_accounts_credential_id'), ['credential_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_accounts_user_id'), ['user_id'], unique=False)

    op.create_table('audit_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('account_id', sa.Integer(), nullable=True),
    sa.Column('event', sa.String(length=48), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('details', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_audit_events_account_id_accounts'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_audit_events_user_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_events'))
    )
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.create_index('ix_audit_events_account_occurred', ['account_id', 'occurred_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_events_event'), ['event'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_events_user_id'), ['user_id'], unique=False)

    op.create_table('positions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('symbol', sa.String(length=32), nullable=False),
    sa.Column('status', sa.Enum('open', 'closed', name='positionstatus', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('quantity', sa.Numeric(precision=28, scale=10), nullable=False),
    sa.Column('entry_price', sa.Numeric(precision=28, scale=10), nullable=False),
    sa.Column('stop_loss', sa.Numeric(precision=28, scale=10), nullable=True),
    sa.Column('take_profit', sa.Numeric(precision=28, scale=10), nullable=True),
    sa.Column('highest_price', sa.Numeric(precision=28, scale=10), nullable=True),
    sa.Column('realized_pnl', sa.Numeric(precision=28, scale=10), nullable=False),
    sa.Column('fees_paid', sa.Numeric(precision=28, scale=10), nullable=False),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint('quantity >= 0', name=op.f('ck_positions_quantity_not_negative')),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_positions_account_id_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_positions'))
    )
    with op.batch_alter_table('positions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_positions_account_id'), ['account_id'], unique=False)
        batch_op.create_index('uq_positions_one_open_per_symbol', ['account_id', 'symbol'], unique=True, sqlite_where=sa.text("status = 'open'"), postgresql_where=sa.text("status = 'open'"))

    op.create_table('watches',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=True),
    sa.Column('exchange_id', sa.String(length=32), nullable=False),
    sa.Column('symbol', sa.String(length=32), nullable=False),
    sa.Column('timeframe', sa.String(length=8), nullable=False),
    sa.Column('cadence_minutes', sa.Integer(), nullable=False),
    sa.Column('signal_source', sa.String(length=80), nullable=False),
    sa.Column('signal_params', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('max_cost_per_call_usd', sa.Numeric(precision=28, scale=10), nullable=True),
    sa.Column('daily_budget_usd', sa.Numeric(precision=28, scale=10), nullable=True),
    sa.Column('auto_execute', sa.Boolean(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('last_run_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('next_run_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('cadence_minutes > 0', name=op.f('ck_watches_cadence_positive')),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_watches_account_id_accounts'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_watches_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_watches')),
    sa.UniqueConstraint('user_id', 'exchange_id', 'symbol', 'timeframe', 'signal_source', name=op.f('uq_watches_user_id_exchange_id_symbol_timeframe_signal_source'))
    )
    with op.batch_alter_table('watches', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_watches_account_id'), ['account_id'], unique=False)
        batch_op.create_index('ix_watches_due', ['enabled', 'next_run_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_watches_user_id'), ['user_id'], unique=False)

    op.create_table('analyses',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('watch_id', sa.Integer(), nullable=True),
    sa.Column('account_id', sa.Integer(), nullable=True),
    sa.Column('exchange_id', sa.String(length=32), nullable=False),
    sa.Column('symbol', sa.String(length=32), nullable=False),
    sa.Column('timeframe', sa.String(length=8), nullable=False),
    sa.Column('bar_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('signal_source', sa.String(length=80), nullable=False),
    sa.Column('provider', sa.String(length=16), nullable=False),
    sa.Column('model', sa.String(length=64), nullable=True),
    sa.Column('prompt_version', sa.String(length=32), nullable=True),
    sa.Column('schema_version', sa.String(length=16), nullable=True),
    sa.Column('cache_key', sa.String(length=64), nullable=True),
    sa.Column('status', sa.Enum('ok', 'invalid', 'failed', 'refused', name='analysisstatus', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('error_code', sa.String(length=48), nullable=True),
    sa.Column('error_message', sa.Text(), nullable=True),
    sa.Column('input_tokens', sa.Integer(), nullable=False),
    sa.Column('cache_read_tokens', sa.Integer(), nullable=False),
    sa.Column('cache_write_tokens', sa.Integer(), nullable=False),
    sa.Column('output_tokens', sa.Integer(), nullable=False),
    sa.Column('reasoning_tokens', sa.Integer(), nullable=False),
    sa.Column('cost_usd', sa.Numeric(precision=28, scale=10), nullable=False),
    sa.Column('original_cost_usd', sa.Numeric(precision=28, scale=10), nullable=True),
    sa.Column('latency_ms', sa.Integer(), nullable=True),
    sa.Column('cached', sa.Boolean(), nullable=False),
    sa.Column('raw_response', sa.Text(), nullable=True),
    sa.Column('signal', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('cost_usd >= 0', name=op.f('ck_analyses_cost_not_negative')),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_analyses_account_id_accounts'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_analyses_user_id_users'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['watch_id'], ['watches.id'], name=op.f('fk_analyses_watch_id_watches'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_analyses'))
    )
    with op.batch_alter_table('analyses', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_analyses_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_analyses_cache_key'), ['cache_key'], unique=False)
        batch_op.create_index('ix_analyses_user_created', ['user_id', 'created_at'], unique=False)
        batch_op.create_index('ix_analyses_watch_created', ['watch_id', 'created_at'], unique=False)

    op.create_table('budget_ledger_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('watch_id', sa.Integer(), nullable=True),
    sa.Column('analysis_id', sa.Integer(), nullable=True),
    sa.Column('provider', sa.String(length=16), nullable=False),
    sa.Column('model', sa.String(length=64), nullable=False),
    sa.Column('status', sa.Enum('reserved', 'settled', 'released', name='ledgerstatus', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('reserved_usd', sa.Numeric(precision=28, scale=10), nullable=False),
    sa.Column('settled_usd', sa.Numeric(precision=28, scale=10), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('settled_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint('reserved_usd >= 0', name=op.f('ck_budget_ledger_entries_reserved_not_negative')),
    sa.CheckConstraint('settled_usd IS NULL OR settled_usd >= 0', name=op.f('ck_budget_ledger_entries_settled_not_negative')),
    sa.ForeignKeyConstraint(['analysis_id'], ['analyses.id'], name=op.f('fk_budget_ledger_entries_analysis_id_analyses'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_budget_ledger_entries_user_id_users'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['watch_id'], ['watches.id'], name=op.f('fk_budget_ledger_entries_watch_id_watches'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_budget_ledger_entries'))
    )
    with op.batch_alter_table('budget_ledger_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_budget_ledger_entries_analysis_id'), ['analysis_id'], unique=False)
        batch_op.create_index('ix_budget_ledger_user_created', ['user_id', 'created_at'], unique=False)
        batch_op.create_index('ix_budget_ledger_watch_created', ['watch_id', 'created_at'], unique=False)

    op.create_table('decisions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('analysis_id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('approved', sa.Boolean(), nullable=False),
    sa.Column('reasons', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('order_spec', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('NOT approved OR order_spec IS NOT NULL', name=op.f('ck_decisions_approved_has_order')),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_decisions_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['analysis_id'], ['analyses.id'], name=op.f('fk_decisions_analysis_id_analyses'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_decisions')),
    sa.UniqueConstraint('analysis_id', 'account_id', name=op.f('uq_decisions_analysis_id_account_id'))
    )
    with op.batch_alter_table('decisions', schema=None) as batch_op:
        batch_op.create_index('ix_decisions_account_created', ['account_id', 'created_at'], unique=False)

    op.create_table('orders',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('decision_id', sa.Integer(), nullable=True),
    sa.Column('client_order_id', sa.String(length=64), nullable=False),
    sa.Column('exchange_order_id', sa.String(length=64), nullable=True),
    sa.Column('symbol', sa.String(length=32), nullable=False),
    sa.Column('side', sa.Enum('buy', 'sell', name='orderside', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('order_type', sa.Enum('market', 'limit', name='ordertype', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('status', sa.Enum('pending', 'open', 'closed', 'canceled', 'expired', 'rejected', name='orderstatus', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('quantity', sa.Numeric(precision=28, scale=10), nullable=False),
    sa.Column('limit_price', sa.Numeric(precision=28, scale=10), nullable=True),
    sa.Column('stop_loss', sa.Numeric(precision=28, scale=10), nullable=True),
    sa.Column('take_profit', sa.Numeric(precision=28, scale=10), nullable=True),
    sa.Column('filled_quantity', sa.Numeric(precision=28, scale=10), nullable=False),
    sa.Column('average_fill_price', sa.Numeric(precision=28, scale=10), nullable=True),
    sa.Column('fee', sa.Numeric(precision=28, scale=10), nullable=False),
    sa.Column('fee_currency', sa.String(length=12), nullable=True),
    sa.Column('error_code', sa.String(length=48), nullable=True),
    sa.Column('error_message', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('filled_quantity >= 0 AND filled_quantity <= quantity', name=op.f('ck_orders_filled_within_quantity')),
    sa.CheckConstraint('quantity > 0', name=op.f('ck_orders_quantity_positive')),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_orders_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['decision_id'], ['decisions.id'], name=op.f('fk_orders_decision_id_decisions'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_orders')),
    sa.UniqueConstraint('client_order_id', name=op.f('uq_orders_client_order_id'))
    )
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.create_index('ix_orders_account_status', ['account_id', 'status'], unique=False)
        batch_op.create_index(batch_op.f('ix_orders_decision_id'), ['decision_id'], unique=False)

    op.create_table('trades',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('position_id', sa.Integer(), nullable=True),
    sa.Column('exchange_trade_id', sa.String(length=64), nullable=True),
    sa.Column('symbol', sa.String(length=32), nullable=False),
    sa.Column('side', sa.Enum('buy', 'sell', name='orderside', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('quantity', sa.Numeric(precision=28, scale=10), nullable=False),
    sa.Column('price', sa.Numeric(precision=28, scale=10), nullable=False),
    sa.Column('fee', sa.Numeric(precision=28, scale=10), nullable=False),
    sa.Column('fee_currency', sa.String(length=12), nullable=True),
    sa.Column('realized_pnl', sa.Numeric(precision=28, scale=10), nullable=True),
    sa.Column('executed_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('price > 0', name=op.f('ck_trades_price_positive')),
    sa.CheckConstraint('quantity > 0', name=op.f('ck_trades_quantity_positive')),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_trades_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_trades_order_id_orders'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['position_id'], ['positions.id'], name=op.f('fk_trades_position_id_positions'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_trades'))
    )
    with op.batch_alter_table('trades', schema=None) as batch_op:
        batch_op.create_index('ix_trades_account_executed', ['account_id', 'executed_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_trades_order_id'), ['order_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_trades_position_id'), ['position_id'], unique=False)



def downgrade():
    with op.batch_alter_table('trades', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_trades_position_id'))
        batch_op.drop_index(batch_op.f('ix_trades_order_id'))
        batch_op.drop_index('ix_trades_account_executed')

    op.drop_table('trades')
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_orders_decision_id'))
        batch_op.drop_index('ix_orders_account_status')

    op.drop_table('orders')
    with op.batch_alter_table('decisions', schema=None) as batch_op:
        batch_op.drop_index('ix_decisions_account_created')

    op.drop_table('decisions')
    with op.batch_alter_table('budget_ledger_entries', schema=None) as batch_op:
        batch_op.drop_index('ix_budget_ledger_watch_created')
        batch_op.drop_index('ix_budget_ledger_user_created')
        batch_op.drop_index(batch_op.f('ix_budget_ledger_entries_analysis_id'))

    op.drop_table('budget_ledger_entries')
    with op.batch_alter_table('analyses', schema=None) as batch_op:
        batch_op.drop_index('ix_analyses_watch_created')
        batch_op.drop_index('ix_analyses_user_created')
        batch_op.drop_index(batch_op.f('ix_analyses_cache_key'))
        batch_op.drop_index(batch_op.f('ix_analyses_account_id'))

    op.drop_table('analyses')
    with op.batch_alter_table('watches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_watches_user_id'))
        batch_op.drop_index('ix_watches_due')
        batch_op.drop_index(batch_op.f('ix_watches_account_id'))

    op.drop_table('watches')
    with op.batch_alter_table('positions', schema=None) as batch_op:
        batch_op.drop_index('uq_positions_one_open_per_symbol', sqlite_where=sa.text("status = 'open'"), postgresql_where=sa.text("status = 'open'"))
        batch_op.drop_index(batch_op.f('ix_positions_account_id'))

    op.drop_table('positions')
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_events_user_id'))
        batch_op.drop_index(batch_op.f('ix_audit_events_event'))
        batch_op.drop_index('ix_audit_events_account_occurred')

    op.drop_table('audit_events')
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_accounts_user_id'))
        batch_op.drop_index(batch_op.f('ix_accounts_credential_id'))

    op.drop_table('accounts')
    with op.batch_alter_table('llm_credentials', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_llm_credentials_user_id'))

    op.drop_table('llm_credentials')
    with op.batch_alter_table('exchange_credentials', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_exchange_credentials_user_id'))

    op.drop_table('exchange_credentials')
    with op.batch_alter_table('backtests', schema=None) as batch_op:
        batch_op.drop_index('ix_backtests_user_created')

    op.drop_table('backtests')
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_keys_user_id'))

    op.drop_table('api_keys')
    op.drop_table('users')
    op.drop_table('candles')
