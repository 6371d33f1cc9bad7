"""The clinic's own voice robot: settings, campaigns, their phones, appointments and attempts

Revision ID: 0011_voice_robot
Revises: 0009_softphone
Create Date: 2026-12-07 02:00:00
"""
import sqlalchemy as sa

from alembic import op

revision = '0011_voice_robot'
down_revision = '0009_softphone'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'voice_robot_settings',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('trunk_channels', sa.Integer(), nullable=False),
        sa.Column('robot_channels', sa.Integer(), nullable=False),
        sa.Column('retries', sa.Integer(), nullable=False),
        sa.Column('retry_minutes', sa.Integer(), nullable=False),
        sa.Column('ring_seconds', sa.Integer(), nullable=False),
        sa.Column('dtmf_seconds', sa.Integer(), nullable=False),
        sa.Column('hours_from', sa.String(length=5), nullable=False),
        sa.Column('hours_to', sa.String(length=5), nullable=False),
        sa.Column('sms_wait_minutes', sa.Integer(), nullable=False),
        sa.Column('send_sms', sa.Boolean(), nullable=False),
        sa.Column('inbound_confirm', sa.Boolean(), nullable=False),
        sa.Column('greeting', sa.String(length=300), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_table(
        'voice_campaigns',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('visit_date', sa.Date(), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_by', sa.Integer(), nullable=True),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['created_by'], ['users.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_voice_campaigns_visit_date', 'voice_campaigns', ['visit_date'])
    op.create_index('ix_voice_campaigns_state', 'voice_campaigns', ['state'])
    op.create_table(
        'voice_phones',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('campaign_id', sa.Integer(), nullable=False),
        sa.Column('phone', sa.String(length=32), nullable=False),
        sa.Column('patient_id', sa.Integer(), nullable=True),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('calls', sa.Integer(), nullable=False),
        sa.Column('next_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_outcome', sa.String(length=16), nullable=False),
        sa.Column('sms_message_id', sa.Integer(), nullable=True),
        sa.Column('sms_deadline', sa.DateTime(timezone=True), nullable=True),
        sa.Column('called_back_uid', sa.String(length=40), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['campaign_id'], ['voice_campaigns.id']),
        sa.ForeignKeyConstraint(['patient_id'], ['patients.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('campaign_id', 'phone', name='uq_voice_phone'),
    )
    op.create_index('ix_voice_phones_campaign_id', 'voice_phones', ['campaign_id'])
    op.create_index('ix_voice_phones_state', 'voice_phones', ['state'])
    op.create_index('ix_voice_phones_next_at', 'voice_phones', ['next_at'])
    op.create_table(
        'voice_items',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('phone_id', sa.Integer(), nullable=False),
        sa.Column('appointment_id', sa.Integer(), nullable=False),
        sa.Column('starts_at', sa.DateTime(timezone=False), nullable=False),
        sa.Column('result', sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(['phone_id'], ['voice_phones.id']),
        sa.ForeignKeyConstraint(['appointment_id'], ['appointments.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_voice_items_phone_id', 'voice_items', ['phone_id'])
    op.create_index('ix_voice_items_appointment_id', 'voice_items', ['appointment_id'])
    op.create_table(
        'voice_attempts',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('phone_id', sa.Integer(), nullable=False),
        sa.Column('round', sa.Integer(), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('outcome', sa.String(length=16), nullable=False),
        sa.Column('digits', sa.String(length=32), nullable=False),
        sa.Column('channel_id', sa.String(length=64), nullable=False),
        sa.Column('prompt', sa.String(length=16), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('note', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['phone_id'], ['voice_phones.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('phone_id', 'round', name='uq_voice_attempt_round'),
    )
    op.create_index('ix_voice_attempts_phone_id', 'voice_attempts', ['phone_id'])
    op.create_index('ix_voice_attempts_state', 'voice_attempts', ['state'])


def downgrade() -> None:
    op.drop_table('voice_attempts')
    op.drop_table('voice_items')
    op.drop_table('voice_phones')
    op.drop_table('voice_campaigns')
    op.drop_table('voice_robot_settings')
