"""users: which phone rings (softphone_ring: sip / web / both) and the browser softphone's
«Записывающее устройство» / «Устройство воспроизведения» (device labels)

Revision ID: 0009_softphone
Revises: 0008
Create Date: 2026-12-06 23:40:00
"""
import sqlalchemy as sa

from alembic import op

revision = '0009_softphone'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('softphone_ring', sa.String(length=8), server_default='sip', nullable=False))
        batch_op.add_column(sa.Column('mic_device', sa.String(length=200), server_default='', nullable=False))
        batch_op.add_column(sa.Column('speaker_device', sa.String(length=200), server_default='', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('speaker_device')
        batch_op.drop_column('mic_device')
        batch_op.drop_column('softphone_ring')
