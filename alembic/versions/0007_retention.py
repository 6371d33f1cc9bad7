"""clinic_settings.exchange_log_days: how long «Журнал обмена» keeps its rows

Revision ID: 0007_retention
Revises: 0006_auth
Create Date: 2026-12-06 20:35:00
"""
import sqlalchemy as sa

from alembic import op

revision = '0007_retention'
down_revision = '0006_auth'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('clinic_settings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('exchange_log_days', sa.Integer(), server_default='90', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('clinic_settings', schema=None) as batch_op:
        batch_op.drop_column('exchange_log_days')
