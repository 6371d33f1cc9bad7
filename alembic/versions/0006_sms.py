"""sms_mailing_rows.skip_reason: why «Рассылка СМС» left a row out

Revision ID: 0006_sms
Revises: 0005
Create Date: 2026-12-07 10:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0006_sms'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('sms_mailing_rows', schema=None) as batch_op:
        batch_op.add_column(sa.Column('skip_reason', sa.String(length=300), server_default='', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('sms_mailing_rows', schema=None) as batch_op:
        batch_op.drop_column('skip_reason')
