"""Reminder rules («СМС → Правила напоминаний») and the reminders they planned

Revision ID: 0012_reminders
Revises: 0009_softphone
Create Date: 2026-12-07 02:00:00
"""
import sqlalchemy as sa

from alembic import op

revision = '0012_reminders'
down_revision = '0009_softphone'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'reminder_rules',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('is_active', sa.Boolean(), nullable=False),
        sa.Column('channel', sa.String(length=16), nullable=False),
        sa.Column('moment', sa.String(length=16), nullable=False),
        sa.Column('offset_value', sa.Integer(), nullable=False),
        sa.Column('offset_unit', sa.String(length=8), nullable=False),
        sa.Column('evening_time', sa.String(length=5), nullable=False),
        sa.Column('stop_before_min', sa.Integer(), nullable=False),
        sa.Column('doctor_id', sa.Integer(), nullable=True),
        sa.Column('service_id', sa.Integer(), nullable=True),
        sa.Column('department', sa.String(length=200), nullable=False),
        sa.Column('template_id', sa.Integer(), nullable=True),
        sa.Column('active_since', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['doctor_id'], ['employees.id'], name=op.f('fk_reminder_rules_doctor_id_employees')),
        sa.ForeignKeyConstraint(['service_id'], ['services.id'], name=op.f('fk_reminder_rules_service_id_services')),
        sa.ForeignKeyConstraint(
            ['template_id'], ['sms_templates.id'],
            name=op.f('fk_reminder_rules_template_id_sms_templates'), ondelete='SET NULL',
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_reminder_rules')),
    )
    op.create_table(
        'reminder_jobs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('rule_id', sa.Integer(), nullable=False),
        sa.Column('appointment_id', sa.Integer(), nullable=False),
        sa.Column('patient_id', sa.Integer(), nullable=False),
        sa.Column('starts_at', sa.DateTime(timezone=False), nullable=False),
        sa.Column('channel', sa.String(length=16), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('not_before', sa.DateTime(timezone=True), nullable=True),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('note', sa.String(length=300), nullable=False),
        sa.Column('sms_message_id', sa.Integer(), nullable=True),
        sa.Column('robot_task_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ['appointment_id'], ['appointments.id'], name=op.f('fk_reminder_jobs_appointment_id_appointments')
        ),
        sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_reminder_jobs_patient_id_patients')),
        sa.ForeignKeyConstraint(
            ['robot_task_id'], ['robot_tasks.id'], name=op.f('fk_reminder_jobs_robot_task_id_robot_tasks')
        ),
        sa.ForeignKeyConstraint(['rule_id'], ['reminder_rules.id'], name=op.f('fk_reminder_jobs_rule_id_reminder_rules')),
        sa.ForeignKeyConstraint(
            ['sms_message_id'], ['sms_messages.id'], name=op.f('fk_reminder_jobs_sms_message_id_sms_messages')
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_reminder_jobs')),
        sa.UniqueConstraint('rule_id', 'appointment_id', 'starts_at', name='uq_reminder_jobs_visit'),
    )
    with op.batch_alter_table('reminder_jobs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reminder_jobs_appointment_id'), ['appointment_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_reminder_jobs_patient_id'), ['patient_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_reminder_jobs_rule_id'), ['rule_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_reminder_jobs_state'), ['state'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('reminder_jobs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reminder_jobs_state'))
        batch_op.drop_index(batch_op.f('ix_reminder_jobs_rule_id'))
        batch_op.drop_index(batch_op.f('ix_reminder_jobs_patient_id'))
        batch_op.drop_index(batch_op.f('ix_reminder_jobs_appointment_id'))
    op.drop_table('reminder_jobs')
    op.drop_table('reminder_rules')
